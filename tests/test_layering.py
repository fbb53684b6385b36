"""The stages' layering (pyproject.toml, ``[tool.importlinter]``), checked by import-linter run as CI runs it:
``sandbox`` imports nothing of ``harness``, and ``sandbox.inside`` (run inside the isolation) only the standard
library; each stage imports only the stages below it; no stage below ``runs`` imports a backend (generation:
the protocol only); no model library below the backends and the pipeline. The second test breaks each rule in a
copy of the tree and checks that the linter says so."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

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
