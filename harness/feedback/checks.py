"""Execution feedback: after each turn the program runs, and what went wrong goes back to the model.

Multi-turn problems: the program so far runs as a run-only job (the ``strict`` printed-value job with no
expected value that matters: only whether it compiled and ran is read). Code prompts: the completion runs
against the problem's *public* tests (a suite's ``public_tests``, HumanEval's docstring examples, MBPP's
first assert) through the ``assert`` scorer, the same two-process path as the hidden tests; the hidden
tests decide the verdict and are never shown. Every job goes through the run's ``Executor`` (same pool,
isolation and limits as final scoring).

What the model is then shown is ``harness.generation.feedback_format``'s.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass, replace
from typing import Any

from harness.generation.feedback_format import TEMPLATES
from harness.suites.docstring_examples import docstring_examples
from harness.suites.problems import CODE, MULTI_TURN, Problem
from harness.execution.problem_limits import TimeLimits
from sandbox.pool import Execution, Job
from sandbox.scorers import SCORERS

MODES = ("none", "errors", "tests")

# Statuses of a run-only check that mean the program ran (a printed value that is not the expected one
# does not matter here: the check has no expected value).
RAN = ("passed", "failed")
# Statuses that are the infrastructure's, not the program's: never fed back.
NOT_THE_PROGRAMS = ("sandbox_error",)


@dataclass(frozen=True)
class FeedbackSettings:
    mode: str = "none"
    max_repairs: int = 1

    @property
    def enabled(self) -> bool:
        return self.mode != "none"

    def as_dict(self) -> dict[str, Any]:
        return {"mode": self.mode, "max_repairs": self.max_repairs, "templates": dict(TEMPLATES)}


def settings_for(requested_mode: str | None, requested_repairs: int | None, suite_mode: str | None,
                 suite_repairs: int | None) -> FeedbackSettings:
    """Flags (or the run config) first, then the suite's YAML, then none / 1."""
    return FeedbackSettings(mode=requested_mode or suite_mode or "none",
                            max_repairs=requested_repairs if requested_repairs is not None
                            else suite_repairs if suite_repairs is not None else 1)


# ------------------------------------------------------------------------------- public tests

def public_tests(problem: Problem) -> tuple[str, ...]:
    """The asserts the model may see: the suite's declared ``public_tests``; else the examples the prompt
    shows (its benchmark fills ``prompt_examples``, MBPP's first assert, or marks HumanEval's docstring examples).
    Empty when there are none."""
    declared = problem.public_tests or problem.prompt_examples
    if declared or not problem.examples_in_docstring:
        return declared
    return docstring_examples(problem.prompt, problem.entry_point)


def public_test_code(problem: Problem, tests: tuple[str, ...]) -> str:
    """The public asserts as test code for the ``assert`` scorer. A failing one is worded by the scorer
    (``sandbox.failed_check``): the assert's line and what the program returned in it, built from the
    public tests' own text; nothing of the hidden tests is in it."""
    body = "\n".join(_logical_lines(test) for test in tests)
    if problem.entry_point:
        return "def check(candidate):\n" + "".join(f"    {line}\n" for line in body.splitlines())
    return _test_setup(problem.test) + body + "\n"


def _test_setup(test: str) -> str:
    """What a top-level test (MBPP's) runs before its first assert: MBPP 367's tree, the sanitized set's
    ``test_imports``. The public assert needs it as the hidden ones do (else it raises a NameError for
    every program). Empty where the first assert is inside a block."""
    lines = test.splitlines()
    first = next((i for i, line in enumerate(lines) if line.strip().startswith("assert")), 0)
    if not lines or lines[first].startswith((" ", "\t")):
        return ""
    return "".join(line + "\n" for line in lines[:first])


def _logical_lines(test: str) -> str:
    """``test`` as written where it is one line (what the model is shown), else each statement rewritten from
    its syntax tree: the text as written may continue over lines (a backslash, brackets, a string) that the
    indentation under ``check`` would break or change."""
    body = ast.parse(test).body
    if len(body) == 1 and "\n" not in test.strip():
        return test.strip()
    return "\n".join(ast.unparse(node) for node in body)


# ------------------------------------------------------------------------------- checks

def check_job(problem: Problem, program: str, line_starts: tuple[int, ...], limits: TimeLimits) -> Job | None:
    """The job that tells whether an attempt worked, or None where there is nothing to check (a code
    prompt without public tests, an infilling problem)."""
    bounded = limits.for_problem(problem)
    if problem.kind == MULTI_TURN:
        return Job(program=program, mode="print_value", limits=bounded, expected="None", scorer="strict",
                   turn_line_starts=line_starts)
    tests = public_tests(problem) if problem.kind == CODE and not problem.suffix else ()
    if not tests:
        return None
    public = replace(problem, test=public_test_code(problem, tests))
    return SCORERS["assert"].build(public, program, bounded, 0, (1,))


_PROGRAM_LINE = re.compile(r" \(<program>, line \d+\)")


def turn_line(execution: Execution, line_starts: tuple[int, ...], code_start: int) -> int | None:
    """The line that raised, counted in the checked turn's own code (1: its first line), or None where the
    sandbox named no line or the line is not in that turn's code (the turns before it all ran)."""
    if execution.line is None or not line_starts or execution.turn != len(line_starts) - 1:
        return None
    line = execution.line - code_start + 1
    return line if line >= 1 else None


def feedback_text(mode: str, problem: Problem, execution: Execution, line: int | None = None) -> str | None:
    """What the model is told about a failed check, or None when there is nothing to tell in this mode
    (the attempt worked; a failing public test in ``errors`` mode; an infrastructure failure). ``line``:
    the failing line in the turn's code (``turn_line``), added to the error."""
    if execution.status in NOT_THE_PROGRAMS:
        return None
    if problem.kind == MULTI_TURN:
        if execution.status in RAN:
            return None
    elif execution.passed:
        return None
    reason = execution.reason.strip() or execution.status
    if execution.status == "timeout":
        reason = "the program did not finish within its time limit"
    failed_test = problem.kind != MULTI_TURN and execution.status == "failed" and reason.startswith("AssertionError")
    if failed_test and mode != "tests":
        return None
    if failed_test:
        reason = "a test failed: " + reason[len("AssertionError"):].lstrip(": ")
    if line is None:
        return reason
    # A syntax error's message names the accumulated program's line; the model is told the turn's.
    return f"{_PROGRAM_LINE.sub('', reason)} (line {line} of the step's code)"


def error_type(execution: Execution) -> str:
    """``NameError``, ``SyntaxError``, ``failed test``, ``timeout``...: for the summary's counts."""
    if execution.status == "syntax_error":
        return "SyntaxError"
    head = execution.reason.split(":", 1)[0].strip()
    if execution.status == "failed" and head == "AssertionError":
        return "failed test"
    if execution.status in ("error", "failed") and head.isidentifier():
        return head
    return execution.status


def check_failed(problem: Problem, execution: Execution) -> bool:
    """A run-only check fails when the program did not run; a public-test check, when any test failed."""
    return execution.status not in RAN if problem.kind == MULTI_TURN else not execution.passed
