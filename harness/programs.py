"""From a finished conversation to the job the sandbox runs, built by the problem's scorer (the table in
``sandbox.scorers``)."""

from __future__ import annotations

from harness.generation import Conversation
from harness.problems import MULTI_TURN, Problem
from sandbox.pool import Job, Limits
from sandbox.scorers import SCORERS


def scorer_name(problem: Problem) -> str:
    """Multi-turn problems use their suite's printed-value scorer; code prompts run their tests
    (HumanEval+ compares with the reference's outputs on its inputs, as evalplus does)."""
    if problem.kind == MULTI_TURN:
        return problem.scorer
    return "evalplus" if problem.metadata.get("tiers") else "assert"


def job_limits(problem: Problem, limits: Limits) -> Limits:
    """The limits one of ``problem``'s programs runs under."""
    # CPU time is the binding limit: it does not grow when the machine is loaded. The wall limit, which
    # catches programs that sleep or block, is twice that plus a margin, so a loaded machine (more busy
    # workers than cores) does not turn a correct program into a timeout.
    cpu = max(limits.cpu_seconds, problem.timeout)
    wall = max(limits.wall_seconds, 2 * cpu + 5.0)
    return Limits(wall_seconds=wall, cpu_seconds=cpu, memory_mb=limits.memory_mb, file_size_mb=limits.file_size_mb,
                  open_files=limits.open_files, processes=limits.processes, output_bytes=limits.output_bytes)


def job_for(conversation: Conversation, limits: Limits) -> Job:
    problem = conversation.unit.problem
    return SCORERS[scorer_name(problem)].build(problem, conversation.program, job_limits(problem, limits),
                                               conversation.unit.case, tuple(conversation.turn_line_starts))
