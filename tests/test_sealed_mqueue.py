"""Sealed jobs (issue 30): the POSIX message queue folder's times carry nothing from one job to the next.

A program may make a POSIX message queue and remove it itself: nothing is left for the clean-up to remove, but the
namespace's ``/dev/mqueue`` keeps the time (to the second) of that change, which a later program reads, and the
program chose it (by waiting). The root of the sandbox (``/``) is made as the server starts: a folder changed
after it has been changed by a job.
"""

from __future__ import annotations

from sandbox.pool import Job, Limits, SandboxPool
from test_sandbox_hostile import require_full_isolation

LIMITS = Limits(wall_seconds=6, cpu_seconds=3, memory_mb=1024, processes=32, output_bytes=200_000)
TEST = "def check(candidate):\n    assert candidate(2) == 4\n"
GOOD = "def double(x):\n    return 2 * x\n"
# Waits into a later second than the server's start, then makes a queue and removes it at once.
TOUCHES_MQUEUE = """
import ctypes, os, time
time.sleep(1.1)
rt = ctypes.CDLL("librt.so.1", use_errno=True)  # by name: find_library forks, which ends the server
assert rt.mq_open(b"/touch", os.O_RDWR | os.O_CREAT, 0o600, None) >= 0
assert rt.mq_unlink(b"/touch") == 0
""" + GOOD
READS_MQUEUE = ("import os\nprint(os.stat('/dev/mqueue').st_mtime_ns > os.stat('/').st_ctime_ns)\n" + GOOD)


def test_a_queue_made_and_removed_by_a_job_leaves_no_trace_for_the_next():
    require_full_isolation()
    jobs = [Job(program=program, mode="assert", limits=LIMITS, test=TEST, entry_point="double")
            for program in (TOUCHES_MQUEUE, READS_MQUEUE)]
    with SandboxPool(workers=1, preload=()) as pool:
        alone = pool.run_one(jobs[1])
    with SandboxPool(workers=1, preload=()) as pool:
        touched = pool.run_one(jobs[0])
        after = pool.run_one(jobs[1])
    assert alone.passed and alone.stdout == "False\n", alone
    assert touched.passed, touched
    assert (after.passed, after.stdout) == (True, alone.stdout), after
