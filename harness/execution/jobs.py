"""From a finished conversation to the job the sandbox runs, built by the problem's scorer (the table in
``sandbox.scorers``)."""

from __future__ import annotations

from harness.generation.conversations import Conversation
from harness.suites.problems import MULTI_TURN, Problem
from harness.execution.time_limits import TimeLimits
from sandbox.pool import Job
from sandbox.scorers import SCORERS


def scorer_name(problem: Problem) -> str:
    """Multi-turn problems use their suite's printed-value scorer; code prompts run their tests
    (HumanEval+ compares with the reference's outputs on its inputs, as evalplus does)."""
    if problem.kind == MULTI_TURN:
        return problem.scorer
    return "evalplus" if problem.metadata.get("tiers") else "assert"


def job_for(conversation: Conversation, limits: TimeLimits) -> Job:
    """The conversation's job, with its problem's limits (``harness.execution.time_limits``)."""
    problem = conversation.unit.problem
    return SCORERS[scorer_name(problem)].build(problem, conversation.program, limits.for_problem(problem),
                                               conversation.unit.case, tuple(conversation.turn_line_starts))
