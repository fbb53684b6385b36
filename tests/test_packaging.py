"""The built wheel carries everything a run needs: the core suite and the tiny models' corpus. Unpacked on
its own (as `pip install .` lays it out in site-packages) and run from another folder, the quick start
works. `.ci/wheel-smoke` does the same through a real install into a second virtual environment."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import zipfile

from conftest import ROOT


def test_the_wheel_runs_the_quick_start_away_from_the_source_tree(tmp_path):
    # Built from a copy: setuptools' build/ folder in the tree could carry files deleted since.
    source = tmp_path / "source"
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(".git", ".venv", "build", "*.egg-info", "results",
                                                                "__pycache__", ".pytest_cache"))
    build = subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
                            "-w", str(tmp_path / "dist"), str(source)], capture_output=True, text=True, timeout=300)
    assert build.returncode == 0, build.stderr[-2000:]
    wheel = next((tmp_path / "dist").glob("program_synthesis_harness-*.whl"))
    site = tmp_path / "site-packages"
    with zipfile.ZipFile(wheel) as archive:
        archive.extractall(site)
    shipped = sorted((site / "harness" / "benchmarks" / "core").glob("*.yaml"))
    in_tree = sorted((ROOT / "benchmarks" / "core").glob("*.yaml"))
    assert [p.name for p in shipped] == [p.name for p in in_tree]
    assert all(a.read_bytes() == b.read_bytes() for a, b in zip(shipped, in_tree))  # same corpus, same tiny models

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    code = ("import harness, sys; from harness.cli import main; "
            "assert harness.__file__.startswith(sys.argv[1]), harness.__file__; sys.argv[1:2] = []; sys.exit(main())")
    result = subprocess.run([sys.executable, "-c", code, str(site), "run", "--suite", "core", "--model", "reference",
                             "--run-name", "quick"], cwd=elsewhere, capture_output=True, text=True, timeout=600,
                            env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(site),
                                 "HARNESS_CACHE": str(tmp_path / "cache")})
    assert result.returncode == 0, result.stderr[-2000:]
    summary = json.loads((elsewhere / "results" / "quick" / "summary.json").read_text())
    assert summary["overall"]["pass@1"] == 1.0 and summary["counts"]["problems"] == 42
