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

from harness.execution.executor import Executor
from harness.generation.conversations import Attempt, Conversation, ConversationGenerator, Unit
from harness.generation.feedback_format import TEMPLATES
from harness.suites.problems import CODE, MULTI_TURN, Problem
from harness.execution.jobs import job_for
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
    """The asserts the model may see: the suite's ``public_tests``; else HumanEval's docstring examples
    (``>>> f(x)`` followed by the value); else, for tests that call the function by name (MBPP), the
    first assert. Empty when there are none."""
    declared = problem.metadata.get("public_tests")
    if declared:
        return tuple(declared)
    if problem.id in WRONG_EXAMPLES:
        return ()
    if problem.entry_point:
        return tuple(_docstring_examples(problem.prompt, problem.entry_point))
    first = next((line.strip() for line in problem.test.splitlines() if line.strip().startswith("assert")), None)
    return (first,) if first else ()


# HumanEval problems whose docstring examples the canonical solution does not satisfy: showing them as
# tests would tell a correct program it is wrong.
WRONG_EXAMPLES = {
    "HumanEval/47": "median([-10, 4, 6, 1000, 10, 20]) is 8.0, the docstring says 15.0",
    "HumanEval/116": "the example [1, 5, 2, 3, 4] -> [1, 2, 3, 4, 5] contradicts the sort by number of ones",
    "HumanEval/130": "tri(1) = 3 describes the sequence, the function returns a list",
    "HumanEval/148": "(\"Venus\") is a string in Python, the function returns a tuple",
}

# How HumanEval's docstrings show an example's result after the call: ``>>> f(x)`` then the value on the
# next line, or on the same line after one of these.
_RESULT_MARK = re.compile(r"\s*(?:#\s*)?(?:==>|==|➞|->|=>|=|should return|returns?)\s*")


def _docstring_examples(prompt: str, entry_point: str) -> list[str]:
    lines = [line.strip() for line in prompt.splitlines()]
    examples = []
    for index, line in enumerate(lines):
        call = line[4:] if line.startswith(">>> ") else line
        if not call.startswith(f"{entry_point}("):
            continue
        candidates = [(call, lines[index + 1])] if line.startswith(">>> ") and index + 1 < len(lines) else []
        candidates += [(call[:mark.start()], call[mark.end():].rstrip(".,")) for mark in _RESULT_MARK.finditer(call)]
        for left, expected in candidates:
            test = f"assert {left.replace(entry_point, 'candidate', 1)} == {expected}"
            if expected and not expected.startswith(">>>") and _is_comparison(test):
                examples.append(test)
                break
    return examples


def _is_comparison(test: str) -> bool:
    """``assert candidate(literals) == literal``: prose that happens to parse (``fib4(n) -> ...``,
    ``== true``) is not an example."""
    try:
        node = ast.parse(test).body[0]
        if not (isinstance(node, ast.Assert) and isinstance(node.test, ast.Compare) and len(node.test.ops) == 1
                and isinstance(node.test.left, ast.Call) and not node.test.left.keywords):
            return False
        for value in (*node.test.left.args, node.test.comparators[0]):
            ast.literal_eval(value)
    except (SyntaxError, ValueError, TypeError, MemoryError, RecursionError):
        return False
    return True


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


class Checker:
    """Schedules a group's turns and repairs, runs the checks of each batch of attempts through the run's
    executor, and says what to feed back."""

    def __init__(self, settings: FeedbackSettings, executor: Executor, limits: TimeLimits):
        self.settings = settings
        self.max_repairs = settings.max_repairs
        self.executor = executor
        self.limits = limits

    def check(self, items: list[tuple[Problem, str, tuple[int, ...], int]]
              ) -> list[tuple[str | None, str, str | None, str | None]]:
        """Per (problem, program, turn line starts, line where the checked turn's code starts): the check's
        status (None: nothing to check), its reason, the error's type (None: the check passed) and the
        feedback (None: no repair)."""
        jobs = [check_job(problem, program, starts, self.limits) for problem, program, starts, _ in items]
        wanted = [(i, job) for i, job in enumerate(jobs) if job is not None]
        executions = self.executor.run([job for _, job in wanted]) if wanted else []
        results: list[tuple[str | None, str, str | None, str | None]] = [(None, "", None, None)] * len(items)
        for (index, _), execution in zip(wanted, executions):
            problem, _, starts, code_start = items[index]
            failed = check_failed(problem, execution)
            if not failed and problem.kind == MULTI_TURN:  # it ran: what it printed means nothing here
                results[index] = ("ran", "", None, None)
                continue
            results[index] = (execution.status, execution.reason[:400], error_type(execution) if failed else None,
                              feedback_text(self.settings.mode, problem, execution,
                                            turn_line(execution, starts, code_start)))
        return results

    def run_group(self, generator: ConversationGenerator, units: list[Unit]) -> list[Conversation]:
        """Every turn of ``units``, each conversation at its own pace: a step generates, in one batch,
        whatever each unfinished conversation needs next (a repair of its turn, or its next turn), then
        checks those attempts together. A conversation that needs no repair goes on to its next turn in
        the step where others repair theirs, instead of waiting for them; the batches shrink as
        conversations finish. The steps depend only on the group and the model's answers, and every
        request's seed only on (unit, turn, round), so results do not depend on the number of processes
        or on resumption."""
        conversations = [generator.start(unit) for unit in units]
        # Per conversation: (turn, repair) to generate next (repair: (round, feedback), None for the first
        # attempt), or None when it is done.
        todo: list[tuple[int, tuple[int, str] | None] | None] = [(0, None)] * len(conversations)
        while ready := [i for i, step in enumerate(todo) if step is not None]:
            steps = [todo[i] for i in ready]
            generator.answer([conversations[i] for i in ready], [turn for turn, _ in steps],  # type: ignore[misc]
                             [repair for _, repair in steps])  # type: ignore[misc]
            # The check of the program so far means something only while the turns before passed it.
            checkable = [i for i in ready if todo[i][0] == 0  # type: ignore[index]
                         or _checks_passed(conversations[i].attempts[todo[i][0] - 1][-1])]  # type: ignore[index]
            outcomes = self.check([(conversations[i].unit.problem, conversations[i].program,
                                    tuple(conversations[i].turn_line_starts), _code_start(conversations[i]))
                                   for i in checkable])
            for i, outcome in zip(checkable, outcomes):
                attempt = conversations[i].attempts[-1][-1]
                attempt.check, attempt.check_reason, attempt.error_type, attempt.feedback = outcome
            for i in ready:
                turn = len(conversations[i].attempts) - 1
                attempt = conversations[i].attempts[turn][-1]
                if attempt.feedback and attempt.round < self.max_repairs:
                    todo[i] = (turn, (attempt.round + 1, attempt.feedback))
                elif turn + 1 < generator.turn_count(conversations[i].unit):
                    todo[i] = (turn + 1, None)
                else:
                    todo[i] = None
        return conversations


def _code_start(conversation: Conversation) -> int:
    """The program's line where the latest turn's own code starts (after its comment, in the base format)."""
    attempt = conversation.attempts[-1][-1]
    return attempt.line_starts[-1] + attempt.text.count("\n")


def _checks_passed(attempt: Attempt) -> bool:
    """Whether the program with this attempt ran (its check raised nothing)."""
    return attempt.check is not None and attempt.error_type is None


# ------------------------------------------------------------------------------- round-wise verdicts

def round_program(conversation: Conversation, repair_round: int) -> Conversation:
    """The program the conversation would score with at most ``repair_round`` repairs per turn: each
    turn's attempt of that round, or its last if it needed fewer. (For a multi-turn problem, the turns
    after a repaired one were generated after the repair: the round-r program is those turns with the
    earlier attempts put back, which is what a run stopping at round r would have scored only where the
    later turns do not depend on the repair.)"""
    chosen = [attempts[min(repair_round, len(attempts) - 1)] for attempts in conversation.attempts]
    if conversation.unit.problem.kind != MULTI_TURN:
        return Conversation(conversation.unit, chosen[0].program, turn_line_starts=[1])
    rebuilt = Conversation(conversation.unit, chosen[0].before if chosen else conversation.program)
    for attempt in chosen:
        rebuilt.add_turn(attempt.text, attempt.record.completion)
    return rebuilt


def execute_rounds(conversations: list[Conversation], executor: Executor, limits: TimeLimits,
                   max_repairs: int) -> tuple[list[Execution], list[dict[str, Any]]]:
    """The hidden tests' verdict after every round 0..R (a round that changed nothing shares the previous
    round's), each sample's final verdict (round R's), and what its line records about the repairs."""
    programs = [[round_program(c, r) for r in range(max_repairs + 1)] for c in conversations]
    jobs: list[Job] = []
    slots: list[list[int]] = []
    for rounds in programs:
        slots.append([])
        for r, program in enumerate(rounds):
            if r and program.program == rounds[r - 1].program:
                slots[-1].append(slots[-1][-1])
            else:
                slots[-1].append(len(jobs))
                jobs.append(job_for(program, limits))
    executions = executor.run(jobs)
    finals, extras = [], []
    for conversation, indices in zip(conversations, slots):
        verdicts = [executions[i] for i in indices]
        finals.append(verdicts[-1])
        extras.append({"repair_round": max(len(a) for a in conversation.attempts) - 1,
                       "feedback": {
                           "calls": sum(len(a) for a in conversation.attempts),
                           "calls_by_round": [sum(min(r + 1, len(a)) for a in conversation.attempts)
                                              for r in range(max_repairs + 1)],
                           "rounds": [{"passed": v.passed, "status": v.status, "reason": v.reason[:400]}
                                      for v in verdicts],
                           "attempts": [[_attempt_record(a) for a in attempts] for attempts in conversation.attempts],
                       }})
    return finals, extras


def _attempt_record(attempt: Attempt) -> dict[str, Any]:
    record = attempt.record
    return {"round": attempt.round, "prompt": record.prompt, "raw": record.raw, "completion": record.completion,
            "new_tokens": record.new_tokens,
            **({"reasoning_tokens": record.reasoning_tokens} if record.reasoning_tokens is not None else {}),
            **({"reasoning_over_budget": True} if record.reasoning_over_budget else {}),
            "check": attempt.check, "check_reason": attempt.check_reason, "error_type": attempt.error_type,
            "feedback": attempt.feedback}
