"""Which check of the tests failed, in words, built in the harness process.

In: the tests' process's reason (``AssertionError: ...``), the line of the tests' code where they failed and
what the program returned on the latest calls, each with the line that called (plain numbers and the reprs
of decoded plain data), and the tests' source, which the harness holds. Out: the reason naming the failing
statement (``assert candidate(-3) == -6``) and what the program returned in it. The hidden tests' text is
quoted here only: the tests' process sends numbers, so no process that programs are forked from, or share,
ever holds it.
"""

from __future__ import annotations

import ast
from functools import lru_cache
from typing import Any

_LONGEST = 300


def explained(reason: str, test: str, line: Any, returned: Any) -> str:
    """``reason`` with the failing statement of ``test`` at ``line`` and the values the program returned
    in it; ``reason`` as it is when the line names no statement of ``test``."""
    statement = _statement(test, line) if type(line) is int else None
    if statement is None:
        return reason
    first, last, text = statement
    values = [str(value)[:_LONGEST] for at, value in _pairs(returned) if first <= at <= last]
    # HumanEval/77's message calls the candidate again (``'First test error: ' + str(candidate(1))``): a
    # value repeated by the next call is shown once.
    values = [value for index, value in enumerate(values) if index == 0 or value != values[index - 1]]
    got = "got " + ", then ".join(values[-3:]) if values else ""
    head, _, message = reason.partition(": ")
    if head == "AssertionError" and not message.strip():
        return "AssertionError: %s%s" % (text, ": " + got if got else "")
    if head == "AssertionError":
        return "%s (%s%s)" % (reason, text, ": " + got if got else "")
    return "%s (in %s%s)" % (reason, text, "; " + got if got else "")


def _pairs(returned: Any) -> list[tuple[int, str]]:
    """The reported ``[[line, repr], ...]``, keeping only well-formed pairs (the report is the tests'
    process's, but checked like any plain data crossing into the harness)."""
    if type(returned) is not list:
        return []
    return [(pair[0], pair[1]) for pair in returned
            if type(pair) is list and len(pair) == 2 and type(pair[0]) is int and type(pair[1]) is str]


@lru_cache(maxsize=1024)
def _statement(test: str, line: int) -> tuple[int, int, str] | None:
    """The innermost statement of ``test`` spanning ``line``: its first and last lines and its source on
    one line (an ``assert``'s without its message, a compound statement's first line only)."""
    try:
        tree = ast.parse(test)
    except (SyntaxError, ValueError, MemoryError, RecursionError):
        return None
    spanning = [node for node in ast.walk(tree) if isinstance(node, ast.stmt)
                and node.lineno <= line <= (node.end_lineno or node.lineno)]
    if not spanning:
        return None
    node = min(spanning, key=lambda n: ((n.end_lineno or n.lineno) - n.lineno, -n.lineno))
    if isinstance(node, ast.Assert):
        text = "assert " + (ast.get_source_segment(test, node.test) or "")
    else:
        text = (ast.get_source_segment(test, node) or "")
        if hasattr(node, "body"):  # for, while, if, with...: its header, not its block
            text = text.splitlines()[0].rstrip(":") if text else text
    text = _one_line(text)
    return node.lineno, node.end_lineno or node.lineno, text if len(text) <= _LONGEST else text[:_LONGEST] + "..."


def _one_line(text: str) -> str:
    """Source spread over several lines, on one: no space after an opening or before a closing bracket."""
    parts = [part.strip() for part in text.splitlines() if part.strip()]
    joined = parts[0] if parts else ""
    for part in parts[1:]:
        joined += part if joined.endswith(("(", "[", "{")) or part.startswith((")", "]", "}")) else " " + part
    return joined
