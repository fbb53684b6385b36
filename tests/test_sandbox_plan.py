"""Calls sent ahead: the tests' straight-line asserts are planned (``sandbox.inside.job.plan``) and their calls sent to
the program's process in batches; the verdicts are those of one call at a time."""

from __future__ import annotations

from sandbox.inside.job.plan import planned_calls
from sandbox.pool import Job, Limits, SandboxPool

LIMITS = Limits(wall_seconds=20, cpu_seconds=10)
DOUBLE = "def double(x):\n    return 2 * x\n"


def _job(program: str, test: str) -> Job:
    return Job(program=program, mode="assert", limits=LIMITS, test=test, entry_point="double")


def test_the_plan_is_the_leading_straight_line_asserts():
    test = ("import math\n\ndef check(candidate):\n    import random\n    assert True\n"
            "    assert candidate(1) == 2\n    assert abs(candidate(-1.5) - -3.0) < 1e-6, 'close'\n"
            "    assert not candidate([1], k=2)\n    assert candidate(3) == 6 and candidate(4) == 8\n"
            "    assert candidate(5) == 10\n")
    # Stops at the first assert whose call may not happen (``and``): candidate(5) is not planned.
    assert planned_calls(test) == [((1,), {}), ((-1.5,), {}), (([1],), {"k": 2})]


def test_nothing_is_planned_where_a_call_may_not_happen_or_a_builtin_is_rebound():
    for test in (
        "def check(candidate):\n    for x in range(3):\n        assert candidate(x) == 2 * x\n",
        "def check(candidate):\n    assert 0 < candidate(1) < 3\n",  # a chained comparison may stop early
        "def check(candidate):\n    assert candidate(x) == 2\n",  # not a literal argument
        "def check(candidate):\n    assert math.isclose(candidate(1), 2)\n",  # an attribute may run code
        "def abs(v):\n    return v\n\ndef check(candidate):\n    assert abs(candidate(1)) == 2\n",
        "def check(candidate, other):\n    assert candidate(1) == 2\n",
        "def check(candidate):\n    assert candidate(1) == 2, candidate(1)\n",  # the message calls it again
        "def check(candidate:\n",  # not Python
    ):
        assert planned_calls(test) == [], test


def test_verdicts_and_reasons_are_those_of_one_call_at_a_time():
    test = ("def check(candidate):\n    assert candidate(1) == 2\n    assert candidate(2) == 4\n"
            "    assert candidate(3) == 6\n")
    programs = {
        DOUBLE: (True, "passed", ""),
        "def double(x):\n    return 0 if x == 2 else 2 * x\n": (False, "failed",
                                                            "AssertionError: assert candidate(2) == 4: got 0"),
        "def double(x):\n    if x == 2:\n        raise ValueError('two')\n    return 2 * x\n": (
            False, "failed", "ValueError: two (in assert candidate(2) == 4)"),
        # The call after a failing one may already have run: it cannot change the verdict nor the reason
        # (what the program returned is what the tests read), even if it loops.
        "def double(x):\n    while x == 3:\n        pass\n    return 0 if x == 2 else 2 * x\n": (
            False, "failed", "AssertionError: assert candidate(2) == 4: got 0"),
    }
    with SandboxPool(workers=1, preload=()) as pool:
        for program, expected in programs.items():
            result = pool.run_one(_job(program, test))
            assert (result.passed, result.status, result.reason) == expected, (program, result)


def test_tests_that_leave_their_plan_still_get_each_call_answered():
    """``check`` is rebound after its definition, so the calls made are not the planned ones: the rest of
    the batch is dropped and each call is answered for itself, in step."""
    test = ("def check(candidate):\n    assert candidate(1) == 2\n    assert candidate(2) == 4\n"
            "    assert candidate(3) == 6\n\n"
            "def other(candidate):\n    assert candidate(1) == 2\n    assert candidate(5) == 10\n"
            "    assert candidate(7) == 14\n\ncheck = other\n")
    wrong_on_seven = "def double(x):\n    return 0 if x == 7 else 2 * x\n"
    with SandboxPool(workers=1, preload=()) as pool:
        right, wrong = (pool.run_one(_job(program, test)) for program in (DOUBLE, wrong_on_seven))
    assert right.passed and right.status == "passed", right
    assert not wrong.passed and wrong.status == "failed", wrong


def test_humanevalplus_inputs_go_ahead_and_a_tier_keeps_its_own_verdict():
    import json

    spec = json.dumps({"base": [[1], [2], [3]], "plus": [[4], [5]], "atol": 0})

    def evalplus_job(program: str) -> Job:
        return Job(program=program, mode="evalplus", limits=LIMITS, test=spec, entry_point="double", helpers=DOUBLE)

    programs = {
        DOUBLE: (True, {"base": True, "plus": True}),
        # Wrong on a plus input, and loops on the one after it, which the tests never ask for.
        "def double(x):\n    while x == 5:\n        pass\n    return 0 if x == 4 else 2 * x\n": (
            False, {"base": True, "plus": False}),
        "def double(x):\n    return 2 * x if x != 2 else None\n": (False, {"base": False, "plus": False}),
    }
    with SandboxPool(workers=1, preload=()) as pool:
        for program, (passed, tiers) in programs.items():
            result = pool.run_one(evalplus_job(program))
            assert (result.passed, result.status, result.tiers) == (passed, "passed" if passed else "failed",
                                                                     tiers), (program, result)
