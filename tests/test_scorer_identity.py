"""Within one sample, each scorer decides on the value's real type, shape and identity, and says why in
words the harness built from what it decoded, through the real sandbox (issue 30's scorer classes and
issue 31's "a failed test says which check failed")."""

from __future__ import annotations

import json

import pytest

from sandbox.pool import Job, Limits, SandboxPool

LIMITS = Limits(wall_seconds=20, cpu_seconds=10, memory_mb=2048)

# name -> (program, expected repr, scorer, passes?)
PRINTED = {
    # Set elements and dict keys keep their types: 1.0 and True are not 1.
    "floats for an int set": ("print({1.0, 2.0})", "{1, 2}", "strict", False),
    "a bool and a float for an int set": ("print({True, 2.0})", "{1, 2}", "strict", False),
    "a float key for an int key": ("print({1.0: 'a'})", "{1: 'a'}", "strict", False),
    "a bool key for an int key": ("print({True: 'a', 2: 'b'})", "{1: 'a', 2: 'b'}", "strict", False),
    "the same int set": ("print({2, 1})", "{1, 2}", "strict", True),
    # Sets of floats get the tolerance lists of floats get.
    "a float set within 1e-6": ("print({0.1 + 0.2, 1.0})", "{0.3, 1.0}", "strict", True),
    "a float set beyond 1e-6": ("print({1.5, 2.5})", "{1.5, 2.6}", "strict", False),
    "nested tuples within 1e-6": ("print({(0.1 + 0.2, (0.5 + 0.25,))})", "{(0.3, (0.75,))}", "strict", True),
    # Sorting both sides and pairing them in order would pair (0.3, 'b') with (0.3, 'a'): a real matching
    # pairs each tuple with its own.
    "tuples a sort-and-zip pairs wrongly": ("print({(0.1 + 0.2, 'a'), (0.3, 'b')})",
                                            "{(0.3, 'a'), (0.30000000000000004, 'b')}", "strict", True),
    "float keys within 1e-6": ("print({0.1 + 0.2: 1})", "{0.3: 1}", "strict", True),
    "an int for a float in a set": ("print({1, 2.5})", "{1.0, 2.5}", "strict", False),
    # The reason shows the value the harness decoded, not the program's own repr of what it printed.
    "an object whose repr lies": ("class Lie:\n    def __repr__(self):\n        return '7980'\n"
                                  "    def __int__(self):\n        return 7979\nprint(Lie())", "7980", "mtpb", False),
    "a str subclass whose repr lies": ("class S(str):\n    def __repr__(self):\n        return \"'7980'\"\n"
                                       "print(S('7979'))", "'7980'", "mtpb", False),
    "a type() class made in exec, printed": ("ns = {}\nexec(\"C = type('C', (), {})\", ns)\nprint(ns['C']())", "1",
                                             "strict", False),
}

TEST = "def check(candidate):\n    assert candidate(2) == 4\n    assert candidate(-3) == -6\n"

CATCHING = ("import decimal\n"
            "def check(candidate):\n"
            "    try:\n        candidate(1)\n    except {catch}:\n        return\n"
            "    raise AssertionError('not caught')\n")

# name -> (program, tests, entry point, passes?)
CALLS = {
    # A program's own class named ValueError is not the builtin: `except ValueError` does not catch it.
    "a look-alike ValueError": ("class ValueError(Exception):\n    pass\n"
                                "def f(x):\n    raise ValueError('mine')\n", CATCHING.format(catch="ValueError"), "f",
                                False),
    "the real ValueError": ("def f(x):\n    raise ValueError('real')\n", CATCHING.format(catch="ValueError"), "f",
                            True),
    # The standard library's classes cross as themselves, with their hierarchy.
    "decimal.InvalidOperation caught as ArithmeticError": (
        "import decimal\ndef f(x):\n    return decimal.Decimal('not a number')\n",
        CATCHING.format(catch="ArithmeticError"), "f", True),
    "decimal.InvalidOperation, tests that never import decimal": (
        "import decimal\ndef f(x):\n    return decimal.Decimal('not a number')\n",
        CATCHING.format(catch="ArithmeticError").replace("import decimal\n", ""), "f", True),
    "decimal.InvalidOperation caught as itself": (
        "import decimal\ndef f(x):\n    return decimal.Decimal('not a number')\n",
        CATCHING.format(catch="decimal.InvalidOperation"), "f", True),
    "a look-alike decimal.InvalidOperation": (
        "class InvalidOperation(Exception):\n    pass\nInvalidOperation.__module__ = 'decimal'\n"
        "def f(x):\n    raise InvalidOperation('mine')\n", CATCHING.format(catch="ArithmeticError"), "f", False),
    "a program's subclass of KeyError is a KeyError": (
        "class Missing(KeyError):\n    pass\ndef f(x):\n    raise Missing('k')\n", CATCHING.format(catch="LookupError"),
        "f", True),
    # A class made with type() inside exec has no __module__: an ordinary verdict, with a reason.
    "a type() class made in exec, returned": (
        "def f(x):\n    ns = {}\n    exec(\"C = type('C', (), {})\", ns)\n    return ns['C']()\n", TEST, "f", False),
    "a type() exception made in exec, raised": (
        "def f(x):\n    ns = {}\n    exec(\"E = type('E', (KeyError,), {})\", ns)\n    raise ns['E']('k')\n",
        CATCHING.format(catch="KeyError"), "f", True),
    # A failed test names its assert and what the program returned.
    "a wrong answer": ("def f(x):\n    return x + 2\n", TEST, "f", False),
    "a wrong answer, with the assert's message": (
        "def f(x):\n    return x + 2\n",
        "def check(candidate):\n    assert candidate(2) == 4\n    assert candidate(-3) == -6, 'negative'\n", "f",
        False),
    "a wrong answer, MBPP style": ("def twice(x):\n    return x + 2\n",
                                   "assert twice(2) == 4\nassert twice(\n    -3) == -6\n", "", False),
    "a wrong answer, twice in one assert": (
        "def f(x):\n    return x + 2\n",
        "def check(candidate):\n    assert candidate(-3) == -6, 'error: ' + str(candidate(-3))\n", "f", False),
    "a long wrong answer": ("def f(x):\n    return list(range(100000))\n",
                            "def check(candidate):\n    assert candidate(1) == [1]\n", "f", False),
    "an exception during an assert": ("def f(x):\n    if x < 0:\n        raise ZeroDivisionError('neg')\n"
                                      "    return 2 * x\n", TEST, "f", False),
}

# HumanEval/30's shape: evalplus's np.allclose broadcasts [[]] against [2.5] and passes it.
EVALPLUS_SPEC = json.dumps({"base": [[[-1.0, 2.5, 3.5]]], "plus": [[[-1.0, 2.5]], [[1, 2]]], "atol": 0})
EVALPLUS_REFERENCE = "def f(l):\n    return [e for e in l if e > 0]\n"
NESTED_EMPTY = ("def f(l):\n    r = [e for e in l if e > 0]\n"
                "    return [[]] if len(r) == 1 and isinstance(r[0], float) else r\n")


@pytest.fixture(scope="module")
def verdicts():
    jobs = [(name, Job(program=program, mode="print_value", limits=LIMITS, expected=expected, scorer=scorer))
            for name, (program, expected, scorer, _) in PRINTED.items()]
    jobs += [(name, Job(program=program, mode="assert", limits=LIMITS, test=test, entry_point=entry,
                        names=() if entry else ("twice",)))
             for name, (program, test, entry, _) in CALLS.items()]
    jobs += [("nested empty list", Job(program=NESTED_EMPTY, mode="evalplus", limits=LIMITS, test=EVALPLUS_SPEC,
                                       entry_point="f", helpers=EVALPLUS_REFERENCE))]
    with SandboxPool(workers=2, preload=()) as pool:
        return dict(pool.run_many(jobs))


@pytest.mark.parametrize("name", list(PRINTED))
def test_printed_value_verdicts(verdicts, name):
    assert verdicts[name].passed is PRINTED[name][3], verdicts[name]
    assert verdicts[name].status in ("passed", "failed"), verdicts[name]


@pytest.mark.parametrize("name", list(CALLS))
def test_call_verdicts(verdicts, name):
    assert verdicts[name].passed is CALLS[name][3], verdicts[name]
    assert verdicts[name].status in ("passed", "failed"), verdicts[name]


def test_shapes_must_match_before_a_tolerant_comparison(verdicts):
    nested = verdicts["nested empty list"]
    assert (nested.passed, nested.tiers) == (False, {"base": True, "plus": False}), nested
    assert "got [[]]" in nested.reason, nested.reason


def test_a_printed_value_reason_shows_what_the_harness_decoded(verdicts):
    assert verdicts["an object whose repr lies"].reason == "printed 7979, expected 7980"
    assert verdicts["a str subclass whose repr lies"].reason == "printed '7979', expected '7980'"
    assert "not plain data" in verdicts["a type() class made in exec, printed"].reason


def test_exceptions_keep_their_identity(verdicts):
    mine = verdicts["a look-alike ValueError"].reason
    assert "ValueError: mine" in mine, mine
    assert "cannot cross to the tests" in verdicts["a type() class made in exec, returned"].reason


def test_a_failed_test_names_its_assert_and_what_the_program_returned(verdicts):
    assert verdicts["a wrong answer"].reason == "AssertionError: assert candidate(-3) == -6: got -1"
    assert verdicts["a wrong answer, with the assert's message"].reason == \
        "AssertionError: negative (assert candidate(-3) == -6: got -1)"
    assert verdicts["a wrong answer, MBPP style"].reason == "AssertionError: assert twice(-3) == -6: got -1"
    assert verdicts["a wrong answer, twice in one assert"].reason == \
        "AssertionError: error: -1 (assert candidate(-3) == -6: got -1)"
    assert verdicts["a long wrong answer"].reason == \
        "AssertionError: assert candidate(1) == [1]: got [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, ...]"
    assert verdicts["an exception during an assert"].reason == \
        "ZeroDivisionError: neg (in assert candidate(-3) == -6)"


def test_a_later_program_cannot_read_an_earlier_failed_assert():
    """The failed assert's words are built in the harness, from the line number and the value the tests'
    process reports: the server, which later programs are forked from, never holds the hidden tests."""
    test = "def check(candidate):\n    assert candidate(7) == 987654321\n"
    scan = ("import re\nNEEDLE = ('assert cand' + 'idate(').encode()\nfound = []\n"
            "with open('/proc/self/maps') as maps, open('/proc/self/mem', 'rb') as mem:\n"
            "    for line in maps:\n        span, perms = line.split()[:2]\n        if 'r' not in perms:\n"
            "            continue\n        lo, hi = (int(p, 16) for p in span.split('-'))\n        try:\n"
            "            mem.seek(lo)\n            chunk = mem.read(hi - lo)\n"
            "        except (OSError, OverflowError, ValueError):\n            continue\n"
            "        found += re.findall(re.escape(NEEDLE) + rb'7\\) == (\\d+)', chunk)\n"
            "print('FOUND', sorted(set(found)))\n"
            "def f(x):\n    return 1\n")
    with SandboxPool(workers=1, preload=()) as pool:
        first = pool.run_one(Job(program="def f(x):\n    return 5\n", mode="assert", limits=LIMITS, test=test,
                                 entry_point="f"))
        later = pool.run_one(Job(program=scan, mode="assert", limits=LIMITS, test=test, entry_point="f"))
    assert first.reason == "AssertionError: assert candidate(7) == 987654321: got 5", first
    assert "FOUND []" in later.stdout, later
