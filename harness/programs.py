"""From a finished conversation to the job the sandbox runs."""

from __future__ import annotations

from harness.generation import Conversation
from harness.problems import MULTI_TURN
from sandbox.pool import Job, Limits


def job_for(conversation: Conversation, limits: Limits) -> Job:
    problem = conversation.unit.problem
    # CPU time is the binding limit: it does not grow when the machine is loaded. The wall limit, which
    # catches programs that sleep or block, is twice that plus a margin, so a loaded machine (more busy
    # workers than cores) does not turn a correct program into a timeout.
    cpu = max(limits.cpu_seconds, problem.timeout)
    wall = max(limits.wall_seconds, 2 * cpu + 5.0)
    job_limits = Limits(wall_seconds=wall, cpu_seconds=cpu,
                        memory_mb=limits.memory_mb, file_size_mb=limits.file_size_mb, open_files=limits.open_files,
                        processes=limits.processes, output_bytes=limits.output_bytes)
    if problem.kind == MULTI_TURN:
        expected = problem.tests[conversation.unit.case].expected
        return Job(program=conversation.program, mode="print_value", limits=job_limits, expected=repr(expected),
                   scorer=problem.scorer, program_timeout=problem.timeout if problem.scorer == "mtpb" else None,
                   turn_line_starts=tuple(conversation.turn_line_starts))
    return Job(program=conversation.program, mode="assert", limits=job_limits, test=problem.test,
               entry_point=problem.entry_point, turn_line_starts=(1,))
