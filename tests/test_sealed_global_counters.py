"""Sealed jobs (issue 30): machine-wide counters a program can read and move, which no fresh server resets.

- The scheduler's autogroup ids: every new session (``setsid``) gets the next id of one counter for the whole
  machine, and a process reads its session's in ``/proc/self/autogroup``. Each program is given a session of its
  own, so it reads the counter as it starts; one that forks children which start sessions moves it.
- Inode numbers of pipes (and sockets: both ``get_next_ino``) and of memory files (``memfd_create``): the kernel
  hands them out from one counter per CPU, for the whole machine. A program pinned to a CPU reads the next one by
  making a pipe, and moves it by making more: no fork, no file in ``/tmp``, nothing the clean-up or
  ``kernel_counters`` sees.
The next program (on any worker, in any command) reads the count: a learner's memory, and its oracle. On a quiet
machine nothing else moves them between two jobs but the harness (a fresh server costs a few sessions).
"""

from __future__ import annotations

import pytest

from sandbox.pool import Job, Limits, SandboxPool
from test_sandbox_hostile import require_full_isolation

LIMITS = Limits(wall_seconds=6, cpu_seconds=3, memory_mb=1024, processes=64, output_bytes=200_000)
TEST = "def check(candidate):\n    assert candidate(2) == 4\n"
GOOD = "def double(x):\n    return 2 * x\n"
# Per counter: a program that prints the counter's value as it starts, and one that moves it by 100.
COUNTERS = {
    "autogroup": ("print(int(open('/proc/self/autogroup').read().split()[0].rsplit('-', 1)[1]))\n",
                  "pid = os.fork()\n    if pid == 0:\n        try:\n            os.setsid()\n        finally:\n"
                  "            os._exit(0)\n    os.waitpid(pid, 0)\n"),
    "pipe_inode": ("import os\nos.sched_setaffinity(0, {0})\nprint(os.fstat(os.pipe()[0]).st_ino)\n",
                   "for fd in os.pipe():\n        os.close(fd)\n"),
    "memfd_inode": ("import os\nos.sched_setaffinity(0, {0})\nprint(os.fstat(os.memfd_create('m')).st_ino)\n",
                    "os.close(os.memfd_create('m'))\n"),
}


@pytest.mark.xfail(strict=True, reason="open: machine-wide counters outlive every namespace and server; only a "
                   "machine (or virtual machine) per job would reset them")
@pytest.mark.parametrize("counter", sorted(COUNTERS))
def test_a_program_cannot_move_a_machine_wide_counter_the_next_program_reads(counter):
    require_full_isolation()
    reads, move = COUNTERS[counter]
    moves = reads + "import os\nfor _ in range(100):\n    " + move
    moves, reads = (Job(program=program + GOOD, mode="assert", limits=LIMITS, test=TEST, entry_point="double")
                    for program in (moves, reads))
    with SandboxPool(workers=1, preload=()) as pool:
        before = pool.run_one(moves)
        after = pool.run_one(reads)
    assert before.passed and after.passed, (before, after)
    # 100 moves would show as a step of 100 or more; the harness's own (a fresh server) are a handful.
    assert int(after.stdout) - int(before.stdout) < 50, (before.stdout, after.stdout)
