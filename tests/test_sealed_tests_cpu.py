"""Sealed jobs (issue 30): the CPU a job's tests may use does not depend on the jobs before it.

The tests' process is kept from job to job, and its CPU limit is counted from what it has used so far. Were the
limit set in whole seconds from there (``RLIMIT_CPU``), a job's tests would get between one second less and the
full limit, depending on the fraction of a second that all earlier jobs' tests used, which an earlier program
moves (the tests decode and compare what it returns). Here an earlier job leaves that fraction at 0.6 or more,
and tests that need 0.7 s of a 1 s limit must still pass after it as they do alone. The tests measure their own
CPU time, so nothing here depends on the machine's speed.
"""

from __future__ import annotations

from sandbox.pool import Job, Limits
from test_sandbox_hostile import require_full_isolation
from test_sealed_jobs import alone_between_after

LIMITS = Limits(wall_seconds=8, cpu_seconds=1, memory_mb=1024, processes=32, output_bytes=200_000)
GOOD = "def double(x):\n    return 2 * x\n"
USED = ("    import resource\n    def used():\n        usage = resource.getrusage(resource.RUSAGE_SELF)\n"
        "        return usage.ru_utime + usage.ru_stime\n")
# The tests' process's CPU time so far ends 0.6 s or more past a whole second.
LEAVES_A_FRACTION = ("def check(candidate):\n" + USED + "    while used() % 1 < 0.6:\n        pass\n"
                     "    assert candidate(2) == 4\n")
NEEDS_0_7_S = ("def check(candidate):\n" + USED + "    start = used()\n    while used() - start < 0.7:\n        pass\n"
               "    assert candidate(2) == 4\n")


def test_the_tests_cpu_budget_does_not_depend_on_earlier_jobs():
    require_full_isolation()
    needs, leaves = (Job(program=GOOD, mode="assert", limits=LIMITS, test=test, entry_point="double")
                     for test in (NEEDS_0_7_S, LEAVES_A_FRACTION))
    alone, left, after = alone_between_after(needs, leaves)
    assert alone.passed and left.passed, (alone, left)
    assert (after.passed, after.status) == (True, "passed"), after
