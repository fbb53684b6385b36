"""Feedback mode's schedule: a conversation that needs no repair goes on to its next turn in the batch
where another repairs its turn, instead of waiting; and each conversation's attempts are what it gets when
generated alone, so the schedule cannot change results. A scripted model records every batch it is asked
for; the checks run in the real sandbox."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.execution.executor import Executor
from harness.execution.problem_limits import TimeLimits
from harness.generation.backend import GenerationRequest, GenerationResult, SamplingParams
from harness.generation.conversations import ConversationGenerator, units_for
from harness.feedback.checker import Checker
from harness.feedback.checks import FeedbackSettings
from harness.suites.registry import resolve_suite
from sandbox.pool import Limits, SandboxPool

PROBLEMS = """\
- id: p/slow
  category: c
  turns: [{prompt: Assign 1 to a.}, {prompt: Print a.}]
  tests: [{inputs: {}, expected: 1}]
- id: p/fast
  category: c
  turns: [{prompt: Assign 2 to b.}, {prompt: Print b.}]
  tests: [{inputs: {}, expected: 2}]
"""
# (first answer, answer after feedback) per turn comment: only p/slow's first turn needs a repair.
SCRIPT = {"# Assign 1 to a.": ("a = undefined", "a = 1"), "# Print a.": ("print(a)", "print(a)"),
          "# Assign 2 to b.": ("b = 2", "b = 2"), "# Print b.": ("print(b)", "print(b)")}


class RecordingBackend:
    """Answers from SCRIPT by the turn's comment (the prompt's last line) and records each batch as
    (problem, turn comment, repair?) per request."""

    name = "scripted"
    requires_reference = False
    supports_infilling = False
    supports_chat = False
    prefers_chat = False

    def __init__(self) -> None:
        self.batches: list[list[tuple[str, str, bool]]] = []

    def identity(self) -> dict:
        return {"backend": self.name}

    def generate(self, requests: list[GenerationRequest], sampling: SamplingParams) -> list[GenerationResult]:
        asked = [(r.conversation.split("/case")[0], r.prompt.rstrip("\n").rsplit("\n", 1)[-1], "# Feedback:" in r.prompt)
                 for r in requests]
        self.batches.append(asked)
        return [GenerationResult(text=SCRIPT[comment][repair], prompt_tokens=1, new_tokens=2)
                for _, comment, repair in asked]


@pytest.fixture(scope="module")
def pool():
    with SandboxPool(workers=1, preload=()) as running:
        yield running


def generate(pool: SandboxPool, suite_dir: Path, problem_ids: list[str]) -> tuple[RecordingBackend, list]:
    suite = resolve_suite(str(suite_dir), None)
    problems = [p for p in suite.problems if p.id in problem_ids]
    backend = RecordingBackend()
    generator = ConversationGenerator(backend, SamplingParams(temperature=0), 0, suite.program_prefix)  # type: ignore[arg-type]
    checker = Checker(FeedbackSettings("errors", 2), Executor(pool, dedup=False), TimeLimits(Limits()))
    return backend, generator.run_group(units_for(problems, 1), checker)


def test_conversations_without_repairs_are_not_held_up(pool, tmp_path):
    (tmp_path / "suite.yaml").write_text("name: s\nscorer: strict\nsandbox_preload: []\n")
    (tmp_path / "problems.yaml").write_text(PROBLEMS)
    backend, conversations = generate(pool, tmp_path, ["p/slow", "p/fast"])
    assert backend.batches == [
        [("p/slow", "# Assign 1 to a.", False), ("p/fast", "# Assign 2 to b.", False)],
        # p/fast's second turn comes with p/slow's repair, not after it.
        [("p/slow", "# Assign 1 to a.", True), ("p/fast", "# Print b.", False)],
        [("p/slow", "# Print a.", False)],
    ]
    slow, fast = conversations
    assert [[a.round for a in turn] for turn in slow.attempts] == [[0, 1], [0]]
    assert slow.attempts[0][0].error_type == "NameError" and slow.attempts[0][1].error_type is None
    assert slow.program.endswith("a = 1\n\n# Print a.\nprint(a)\n\n")
    # Each conversation is what it is when generated alone: the schedule changes when, never what.
    for conversation in conversations:
        _, (alone,) = generate(pool, tmp_path, [conversation.unit.problem.id])
        assert alone.program == conversation.program
        assert [[(a.round, a.record.prompt, a.record.raw, a.check, a.feedback) for a in turn] for turn in alone.attempts] \
            == [[(a.round, a.record.prompt, a.record.raw, a.check, a.feedback) for a in turn]
                for turn in conversation.attempts]
