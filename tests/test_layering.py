"""The stages' layering (pyproject.toml, ``[tool.importlinter]``), checked by import-linter run as CI runs it:
``sandbox`` imports nothing of ``harness``, and ``sandbox.inside`` (run inside the isolation) only the standard
library; each stage imports only the stages below it; no stage below ``runs`` imports a backend (generation drives
one through ``harness.generation.backend``); no model library below the backends and the pipeline. The second test
breaks each rule in a copy of the tree and checks that the linter says so. The last finds import cycles with grimp
(the graph import-linter reads), function-level and ``TYPE_CHECKING`` imports included: a cycle is a type that
two modules share and that belongs below both."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import grimp
import pytest

from conftest import ROOT


def lint_imports(root: Path) -> subprocess.CompletedProcess:
    """``lint-imports`` on the tree at ``root`` (its pyproject.toml, its packages first on the path)."""
    command = Path(sys.executable).with_name("lint-imports")
    assert command.exists(), "import-linter is not installed (pip install -e '.[test]')"
    env = {**os.environ, "PYTHONPATH": str(root)}
    return subprocess.run([str(command), "--no-cache"], cwd=root, env=env, capture_output=True, text=True,
                          timeout=300)


def test_the_contracts_hold():
    result = lint_imports(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


@pytest.mark.parametrize("module,source,broken", [
    ("sandbox/leak.py", "from harness.errors import InputError\n", "sandbox/ stands alone"),
    ("sandbox/inside/leak.py", "from sandbox.pool import SandboxPool\n", "sandbox/inside/ runs inside"),
    ("sandbox/inside/wire/leak.py", "def load():\n    import yaml\n", "sandbox/inside/ runs inside"),
    ("harness/suites/leak.py", "from harness.runs.pipeline import run_benchmark\n", "Each stage imports only"),
    ("harness/scoring/leak.py", "def load():\n    from harness.backends.reference import ReferenceBackend\n",
     "import no backend"),
    ("harness/reports/leak.py", "import torch\n", "Only the backends and the run pipeline"),
    ("harness/suites/leak.py", "import datasets\n", "Only the hub fallback"),
    ("harness/scoring/leak.py", "from typing import TYPE_CHECKING\n\nif TYPE_CHECKING:\n"
                                "    from harness.backends.reference import ReferenceBackend\n", "import no backend"),
])
def test_a_forbidden_import_is_caught(tmp_path, module, source, broken):
    for package in ("harness", "sandbox"):
        shutil.copytree(ROOT / package, tmp_path / package, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    (tmp_path / module).write_text(source, encoding="utf-8")
    result = lint_imports(tmp_path)
    assert result.returncode != 0, result.stdout
    report = " ".join(result.stdout.split())  # contract names wrap in the report
    verdict = re.search(re.escape(broken) + r".{0,200}? (KEPT|BROKEN)", report)
    assert verdict is not None and verdict.group(1) == "BROKEN", report  # that contract, not another
    leaked = module.removesuffix(".py").replace("/", ".")
    assert leaked in report, report


def import_cycles(package: str) -> list[str]:
    """Each set of ``package``'s modules that import one another in a circle (a strongly connected component
    of the import graph, function-level and ``TYPE_CHECKING`` imports included), with the imports that close
    it: ``a -> b (l.12)``."""
    graph = grimp.build_graph(package, exclude_type_checking_imports=False, cache_dir=None)
    edges = {module: sorted(graph.find_modules_directly_imported_by(module) & graph.modules)
             for module in sorted(graph.modules)}

    def lines(importer: str, imported: str) -> str:
        details = graph.get_import_details(importer=importer, imported=imported)
        return ", ".join(str(detail["line_number"]) for detail in details)

    return [" <-> ".join(component) + ": " + "; ".join(f"{a} -> {b} (l.{lines(a, b)})" for a in component
                                                       for b in edges[a] if b in component)
            for component in _strongly_connected(edges) if len(component) > 1]


def _strongly_connected(edges: dict[str, list[str]]) -> list[list[str]]:
    """Tarjan's components, without recursion (a long import chain would exceed Python's recursion limit)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []
    for root in edges:
        if root in index:
            continue
        work = [(root, iter(edges[root]))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is None:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    component = []
                    while (member := stack.pop()) != node:
                        on_stack.discard(member)
                        component.append(member)
                    on_stack.discard(node)
                    components.append(sorted([node, *component]))
            elif child not in index:
                index[child] = low[child] = len(index)
                stack.append(child)
                on_stack.add(child)
                work.append((child, iter(edges[child])))
            elif child in on_stack:
                low[node] = min(low[node], index[child])
    return components


def test_no_import_cycles_among_harness_modules():
    cycles = import_cycles("harness")
    assert not cycles, f"{len(cycles)} import cycle(s) among harness modules:\n" + "\n".join(cycles)
