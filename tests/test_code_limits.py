"""Size limits on the code (issue 27, tightening issue 17's): no module over 300 lines, no function over 50
lines and no package folder with more than 12 modules (``__init__.py`` included) in ``harness/`` and
``sandbox/``, so that every module has one job, every function reads at a glance and every package can be
taken in at once. The check parses every file (a function's lines run from its ``def``, decorators excluded,
to its last line, docstring included), counts the ``.py`` files directly in each folder, and names every
offender, not only the first."""

from __future__ import annotations

import ast
from pathlib import Path

from conftest import ROOT

MAX_MODULE_LINES = 300
MAX_FUNCTION_LINES = 50
MAX_PACKAGE_MODULES = 12
PACKAGES = ("harness", "sandbox")


def offenders(root: Path) -> list[str]:
    """``path: N lines`` for each module over the limit, ``path:line name: N lines`` for each function and
    ``folder/: N modules`` for each package folder."""
    found = []
    for package in PACKAGES:
        for folder in sorted({path.parent for path in (root / package).rglob("*.py")}):
            if (modules := len(list(folder.glob("*.py")))) > MAX_PACKAGE_MODULES:
                found.append(f"{folder.relative_to(root)}/: {modules} modules (at most {MAX_PACKAGE_MODULES})")
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


def test_no_module_function_or_package_over_the_limits():
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


def test_the_check_finds_every_crowded_package_folder(tmp_path):
    crowded = tmp_path / "harness" / "crowded"
    full = tmp_path / "sandbox" / "full"
    for folder, count in ((crowded, MAX_PACKAGE_MODULES + 1), (full, MAX_PACKAGE_MODULES),
                          (tmp_path / "sandbox" / "deep" / "crowded", MAX_PACKAGE_MODULES + 2)):
        folder.mkdir(parents=True)
        (folder / "__init__.py").write_text("")
        for i in range(count - 1):
            (folder / f"m{i}.py").write_text("x = 1\n")
    (full / "notes.txt").write_text("not a module\n")
    assert offenders(tmp_path) == [
        f"harness/crowded/: {MAX_PACKAGE_MODULES + 1} modules (at most {MAX_PACKAGE_MODULES})",
        f"sandbox/deep/crowded/: {MAX_PACKAGE_MODULES + 2} modules (at most {MAX_PACKAGE_MODULES})",
    ]
