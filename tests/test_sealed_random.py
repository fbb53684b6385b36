"""Sealed jobs (issue 30): the tests' process's random numbers do not run on from one job to the next.

A problem's tests may draw unseeded random inputs (HumanEval/38 and /50 do, as in their original fresh
process per sample). The tests' process is kept from job to job, so its ``random`` generator ran on: where a
later sample's inputs are, depended on how many numbers the earlier samples' tests drew (which a wrong
program chooses, by failing at a call of its choice), and a program that saw 624 of them (Mersenne Twister's
state) could tell the next sample's inputs before they were drawn.
"""

from __future__ import annotations

from sandbox.pool import Job, Limits, SandboxPool
from test_sandbox_hostile import require_full_isolation

LIMITS = Limits(wall_seconds=10, cpu_seconds=5, memory_mb=1024, processes=32, output_bytes=200_000)
# Trusted tests that draw their inputs unseeded, 32 bits each.
DRAWS = "def check(candidate):\n    import random\n    for _ in range(624):\n        candidate(random.getrandbits(32))\n"
# Rebuilds the generator's state from the 624 outputs it was called with and prints the next one.
PREDICTS = """
import random
seen = []

def _untemper(y):
    y ^= y >> 18
    y ^= (y << 15) & 0xEFC60000
    r = y
    for _ in range(5):
        r = y ^ ((r << 7) & 0x9D2C5680)
    y = r & 0xFFFFFFFF
    r = y
    for _ in range(3):
        r = y ^ (r >> 11)
    return r & 0xFFFFFFFF

def double(x):
    seen.append(x)
    if len(seen) == 624:
        twin = random.Random()
        twin.setstate((3, tuple(_untemper(v) for v in seen) + (624,), None))
        print(twin.getrandbits(32))
    return 2 * x
"""
FIRST_INPUT = "first = []\n\ndef double(x):\n    if not first:\n        first.append(x)\n        print(x)\n    return 2 * x\n"


def test_a_program_cannot_tell_the_next_samples_random_inputs():
    require_full_isolation()
    predicts, first = (Job(program=program, mode="assert", limits=LIMITS, test=DRAWS, entry_point="double")
                       for program in (PREDICTS, FIRST_INPUT))
    with SandboxPool(workers=1, preload=()) as pool:
        predicted = pool.run_one(predicts)
        drawn = pool.run_one(first)
    assert predicted.passed and drawn.passed, (predicted, drawn)
    assert predicted.stdout.strip().isdigit() and drawn.stdout.strip().isdigit(), (predicted, drawn)
    assert predicted.stdout != drawn.stdout, "the earlier program foretold the later one's first input"
