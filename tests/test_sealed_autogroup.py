"""Sealed jobs (issue 30): a machine-wide counter a program can move, the scheduler's autogroup ids.

Every new session (``setsid``) gets the next id of one counter for the whole machine, and a process reads its
session's id in ``/proc/self/autogroup``. Each program is given a session of its own, so it reads the counter as
it starts; a program that forks children which start sessions of their own moves it by as many as it likes,
and the next program (on any worker, in any command) reads that count: a learner's memory, and its oracle,
that no fresh server or namespace resets. On a quiet machine nothing else moves it between two jobs but the
harness (a fresh server costs a few sessions).
"""

from __future__ import annotations

from sandbox.pool import Job, Limits, SandboxPool
from test_sandbox_hostile import require_full_isolation

LIMITS = Limits(wall_seconds=6, cpu_seconds=3, memory_mb=1024, processes=64, output_bytes=200_000)
TEST = "def check(candidate):\n    assert candidate(2) == 4\n"
GOOD = "def double(x):\n    return 2 * x\n"
READS_ID = "print(int(open('/proc/self/autogroup').read().split()[0].rsplit('-', 1)[1]))\n"
MOVES_IT = READS_ID + """
import os
for _ in range(100):
    pid = os.fork()
    if pid == 0:
        try:
            os.setsid()
        finally:
            os._exit(0)
    os.waitpid(pid, 0)
"""


def test_a_program_cannot_move_the_autogroup_id_the_next_program_reads():
    require_full_isolation()
    moves, reads = (Job(program=program + GOOD, mode="assert", limits=LIMITS, test=TEST, entry_point="double")
                    for program in (MOVES_IT, READS_ID))
    with SandboxPool(workers=1, preload=()) as pool:
        before = pool.run_one(moves)
        after = pool.run_one(reads)
    assert before.passed and after.passed, (before, after)
    # 100 sessions would show as a step of 100 or more; the harness's own (a fresh server) are a handful.
    assert int(after.stdout) - int(before.stdout) < 50, (before.stdout, after.stdout)
