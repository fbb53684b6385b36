"""The examples a code prompt's docstring shows, as asserts: ``>>> f(x)`` followed by the value, or
``f(x) ==> value`` on one line (HumanEval's styles, which the YAML suites' code prompts follow too). They are
a problem's ``prompt_examples``, the tests ``--feedback tests`` may show where none are declared."""

from __future__ import annotations

import ast
import re
from functools import lru_cache

# How HumanEval's docstrings show an example's result after the call: ``>>> f(x)`` then the value on the
# next line, or on the same line after one of these.
_RESULT_MARK = re.compile(r"\s*(?:#\s*)?(?:==>|==|➞|->|=>|=|should return|returns?)\s*")


@lru_cache(maxsize=1024)
def docstring_examples(prompt: str, entry_point: str) -> tuple[str, ...]:
    """``assert candidate(...) == value`` for each example of ``entry_point`` in ``prompt`` (asked for again at every
    feedback round of every sample)."""
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
    return tuple(examples)


# Infilling suites repeat each HumanEval docstring in dozens of prompts: each example is checked once.
@lru_cache(maxsize=4096)
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
