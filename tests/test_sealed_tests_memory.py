"""Sealed jobs (issue 30): what a program returns does not leave the kept tests' process bigger for later jobs.

The tests' process decodes a numpy value a program returns by importing numpy, where the suite's preload had
not: about 80 MiB of address space it then keeps for the rest of its life, under a memory limit that is each
later job's own. A later job whose tests need the memory they have alone then fails (MemoryError). The program
need not import numpy itself: its side of the channel, in its own process, can say "a numpy float".
"""

from __future__ import annotations

from sandbox.pool import Job, Limits
from test_sandbox_hostile import require_full_isolation
from test_sealed_jobs import alone_between_after

LIMITS = Limits(wall_seconds=20, cpu_seconds=10, memory_mb=512, processes=32, output_bytes=200_000)
GOOD = "def double(x):\n    return 2 * x\n"
# Without importing numpy itself: the program's side of the channel, in its own process, says "a numpy float" in
# the codec's words.
RETURNS_NUMPY = """
import sys
candidate = sys.modules["sandbox.inside.job.candidate"]
def encode_value(value, *rest):
    return {"numpy": ["<f8", float(value)]}
candidate.encode_value = encode_value

def double(x):
    return 2 * x
"""
TEST = "def check(candidate):\n    candidate(2)\n"
# Tests that need 440 MiB of their own (in a 512 MiB limit) besides the program's answer.
NEEDS_440_MIB = "def check(candidate):\n    ballast = bytearray(440 << 20)\n    assert candidate(2) == 4\n"


def test_a_value_a_program_returns_leaves_later_tests_their_memory():
    require_full_isolation()
    needs = Job(program=GOOD, mode="assert", limits=LIMITS, test=NEEDS_440_MIB, entry_point="double")
    alone, numpy, after = alone_between_after(needs, Job(program=RETURNS_NUMPY, mode="assert", limits=LIMITS,
                                                         test=TEST, entry_point="double"))
    assert alone.passed, alone
    assert numpy.passed, numpy
    assert (after.passed, after.status, after.reason) == (True, "passed", ""), after
