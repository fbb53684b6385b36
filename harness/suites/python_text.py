"""Python a suite holds as text (test code, public tests, expected literals), checked the way a run will
use it: every way parsing can fail, deep nesting included (``RecursionError``, ``MemoryError``), becomes
a message, so that ``validate`` refuses what a run could not compile."""

from __future__ import annotations

import ast
from typing import Any


def syntax_problem(source: str) -> str | None:
    """Why ``source`` does not parse as Python, or None when it does."""
    try:
        ast.parse(source)
    except SyntaxError as exc:
        return exc.msg
    except ValueError as exc:  # a null byte
        return str(exc)
    except (RecursionError, MemoryError):
        return "nested too deeply for Python's parser"
    return None


def literal(text: str) -> Any:
    """The value of a Python literal; ``ValueError`` with the reason for anything else."""
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError) as exc:
        raise ValueError(str(exc)) from None
    except (RecursionError, MemoryError):
        raise ValueError("nested too deeply for Python's parser") from None
