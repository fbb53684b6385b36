"""From finished conversations to the jobs the sandbox runs, built by each problem's scorer (the table in
``sandbox.scorers``), and to their executions."""

from __future__ import annotations

from collections.abc import Callable

from harness.execution.executor import Executor
from harness.execution.problem_limits import TimeLimits
from harness.generation.conversations import Conversation
from harness.suites.problems import MULTI_TURN, Problem
from sandbox.pool import Execution, Job, Limits
from sandbox.scorers import SCORERS


def scorer_name(problem: Problem) -> str:
    """Multi-turn problems use their suite's printed-value scorer; code prompts run their tests
    (HumanEval+ compares with the reference's outputs on its inputs, as evalplus does)."""
    if problem.kind == MULTI_TURN:
        return problem.scorer
    return "evalplus" if problem.tiers else "assert"


def job_for(conversation: Conversation, limits: TimeLimits) -> Job:
    """The conversation's job, with its problem's limits (``harness.execution.time_limits``)."""
    problem = conversation.unit.problem
    return SCORERS[scorer_name(problem)].build(problem, conversation.program, limits.for_problem(problem),
                                               conversation.unit.case, tuple(conversation.turn_line_starts))


def execute(conversations: list[Conversation], executor: Executor, limits: Limits | TimeLimits,
            on_done: Callable[[int], None] | None = None) -> list[Execution]:
    """Each conversation's execution, in order. ``limits``: per problem (``harness.execution.time_limits``),
    or plain limits as floors; ``on_done(count)`` reports progress."""
    per_problem = limits if isinstance(limits, TimeLimits) else TimeLimits(limits)
    return executor.run([job_for(c, per_problem) for c in conversations], on_done=on_done)
