"""The program a chat reply to a code prompt becomes: the function the reply declares, without the example
calls a chat model writes after it (SmolLM2-135M-Instruct's replies to HumanEval end in ``# Example usage:``
and ``print(f())`` calls with missing arguments; run with the program, they failed it whatever the function
did). evalplus's sanitizer keeps imports, definitions and assignments alone; so does the harness now."""

from __future__ import annotations

from harness.generation.prompt_formats import ChatFormat
from harness.suites.registry import resolve_suite

CORRECT = ("def running_max(values: list[int]) -> list[int]:\n    out = []\n    for v in values:\n"
           "        out.append(v if not out else max(out[-1], v))\n    return out\n")


def running_max_problem():
    return next(p for p in resolve_suite("core", None).problems if p.id == "core/he-running-max")


def test_example_calls_after_the_function_are_left_out():
    problem = running_max_problem()
    reply_code = CORRECT + "\n\n# Example usage:\nprint(running_max())  # Output: [1, 3, 3, 5]\nassert False\n"
    program = ChatFormat.program_for_function(problem, reply_code)
    namespace: dict = {}
    exec(compile(program, "<program>", "exec"), namespace)  # the example calls would raise here
    assert namespace["running_max"]([1, 3, 2, 5]) == [1, 3, 3, 5]
    assert "print(" not in program and "assert False" not in program


def test_imports_helpers_and_constants_stay():
    problem = running_max_problem()
    reply_code = ("import math\nLIMIT = 10\n\n\ndef helper(v):\n    return v\n\n\n" + CORRECT
                  + "\nfor case in ([1], [2]):\n    print(running_max(case))\n")
    program = ChatFormat.program_for_function(problem, reply_code)
    for kept in ("import math", "LIMIT = 10", "def helper(v):", "def running_max("):
        assert kept in program
    assert "for case in" not in program


def test_a_reply_that_does_not_parse_is_kept_as_it_is():
    problem = running_max_problem()
    broken = CORRECT + "print(running_max([1]]))\n"
    assert broken in ChatFormat.program_for_function(problem, broken)
