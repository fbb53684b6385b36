"""Size limits on the code (issue 17): no module over 400 lines and no function over 60 lines in
``harness/`` and ``sandbox/``, so that every module has one job and every function reads at a glance.
The check parses every file (a function's lines run from its ``def``, decorators excluded, to its last
line, docstring included) and names every offender, not only the first."""

from __future__ import annotations

import ast
from pathlib import Path

from conftest import ROOT

MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 60
PACKAGES = ("harness", "sandbox")


def offenders(root: Path) -> list[str]:
    """``path: N lines`` for each module over the limit and ``path:line name: N lines`` for each function."""
    found = []
    for package in PACKAGES:
        for path in sorted((root / package).rglob("*.py")):
            source = path.read_text(encoding="utf-8")
            where = path.relative_to(root)
            if (lines := len(source.splitlines())) > MAX_MODULE_LINES:
                found.append(f"{where}: module of {lines} lines (at most {MAX_MODULE_LINES})")
            for node in ast.walk(ast.parse(source, filename=str(path))):
                if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    length = (node.end_lineno or node.lineno) - node.lineno + 1
                    if length > MAX_FUNCTION_LINES:
                        found.append(f"{where}:{node.lineno} {node.name}: {length} lines (at most "
                                     f"{MAX_FUNCTION_LINES})")
    return found


def test_no_module_or_function_over_the_limits():
    found = offenders(ROOT)
    assert not found, f"{len(found)} over the size limits:\n" + "\n".join(found)


def test_the_check_finds_a_long_function_and_a_long_module(tmp_path):
    (tmp_path / "harness").mkdir()
    (tmp_path / "sandbox").mkdir()
    body = "".join(f"    x{i} = {i}\n" for i in range(MAX_FUNCTION_LINES))
    (tmp_path / "harness" / "long_function.py").write_text(f"def long():\n{body}\n\ndef short():\n    return 1\n")
    (tmp_path / "sandbox" / "long_module.py").write_text("x = 1\n" * (MAX_MODULE_LINES + 1))
    (tmp_path / "sandbox" / "fine.py").write_text("def f():\n    return 1\n")
    assert offenders(tmp_path) == [
        f"harness/long_function.py:1 long: {MAX_FUNCTION_LINES + 1} lines (at most {MAX_FUNCTION_LINES})",
        f"sandbox/long_module.py: module of {MAX_MODULE_LINES + 1} lines (at most {MAX_MODULE_LINES})",
    ]
