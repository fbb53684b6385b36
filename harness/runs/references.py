"""Every problem's reference solution, generated as a conversation by the reference backend: what
``validate --references`` runs, and what the time limits are measured on."""

from __future__ import annotations

from collections.abc import Sequence

from harness.backends.reference import ReferenceBackend
from harness.generation.backend import SamplingParams
from harness.generation.conversations import Conversation, ConversationGenerator, units_for
from harness.suites.problems import Problem


def reference_conversations(problems: Sequence[Problem], program_prefix: str) -> list[Conversation]:
    """One conversation per problem and test case, answered with the problem's reference solution."""
    generator = ConversationGenerator(ReferenceBackend(), SamplingParams(temperature=0), 0, program_prefix)
    return generator.run_group(units_for(list(problems), 1))
