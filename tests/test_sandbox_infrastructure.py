"""The sandbox as infrastructure: an interpreter under /tmp, the canary that stops a run whose sandbox cannot
run programs, and sandbox failures that are never scored as the model's."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import run_cli
from harness.cli import INFRASTRUCTURE_FAILURE, _infrastructure_status
from harness.run_directory import RunDirectory
from sandbox.isolation import probe

NAMESPACES = probe("auto").layers["pid_namespace"]
needs_namespaces = pytest.mark.skipif(not NAMESPACES and os.environ.get("CI") != "true",
                                      reason="bubblewrap cannot create namespaces here")
CODE_PROMPTS = "core/he-running-max,core/he-is-anagram,core/he-roman"


@pytest.fixture(scope="module")
def venv_under_tmp(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("ci-runner")
    assert str(root).startswith("/tmp/")
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(root / "deep" / ".venv")], check=True)
    return root / "deep" / ".venv" / "bin" / "python"


@needs_namespaces
def test_an_interpreter_under_tmp_runs_programs_and_stays_read_only(venv_under_tmp, tmp_path):
    run = run_cli("-q", "run", "--suite", "core", "--model", "reference", "--problems", CODE_PROMPTS,
                  "--sandbox-python", str(venv_under_tmp), "--sandbox", "strict", "--no-verdict-cache",
                  "--results-dir", str(tmp_path), "--run-name", "tmp-venv")
    assert run.returncode == 0, run.stderr[-2000:]
    summary = json.loads((tmp_path / "tmp-venv" / "summary.json").read_text())
    assert summary["counts"]["passed"] == 3 == summary["counts"]["executions"]
    # A program cannot write into the bound environment (and nothing reaches the host's copy).
    samples = tmp_path / "samples.jsonl"
    marker = venv_under_tmp.parent.parent / "pwned"
    completion = (f"    open({str(marker)!r}, 'w').write('x')\n    out, best = [], None\n    for n in numbers:\n"
                  "        best = n if best is None else max(best, n)\n        out.append(best)\n    return out\n")
    samples.write_text(json.dumps({"task_id": "core/he-running-max", "completion": completion}) + "\n")
    evaluated = run_cli("-q", "evaluate", "--suite", "core", "--samples", str(samples), "--sandbox-python",
                        str(venv_under_tmp), "--no-verdict-cache", "--results-dir", str(tmp_path), "--run-name", "w")
    assert evaluated.returncode == 0, evaluated.stderr[-2000:]
    record = json.loads((tmp_path / "w" / "samples.jsonl").read_text())
    assert not record["passed"] and "Read-only file system" in record["reason"], record["reason"]
    assert not marker.exists()


@needs_namespaces
def test_a_sandbox_that_cannot_run_programs_stops_the_run_before_the_model_loads(tmp_path):
    """A wrapper script whose folder is not bound into the sandbox: the host can run it, the sandbox cannot.
    The run must stop with one line (exit 2) instead of scoring every sample 0%."""
    wrapper = tmp_path / "bin" / "python-wrapper"
    wrapper.parent.mkdir()
    wrapper.write_text(f"#!/bin/sh\nexec {sys.executable} \"$@\"\n")
    wrapper.chmod(0o755)
    run = run_cli("run", "--suite", "core", "--model", "tiny-codegen", "--limit", "1", "--sandbox-python",
                  str(wrapper), "--results-dir", str(tmp_path / "results"), "--run-name", "r",
                  env_extra={"HARNESS_CACHE": str(tmp_path / "empty-cache")})
    assert run.returncode == 2, run.stderr[-2000:]
    errors = [line for line in run.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "the sandbox cannot run programs" in errors[0]
    assert "Traceback" not in run.stderr
    assert not (tmp_path / "empty-cache" / "tiny-models").exists(), "the model was built before the check"


def test_sandbox_errors_exit_non_zero_and_are_redone_on_resume(tmp_path):
    summary = {"counts": {"statuses": {"passed": 3, "sandbox_error": 2}}}
    assert _infrastructure_status(summary, resumable=True) == INFRASTRUCTURE_FAILURE
    assert _infrastructure_status({"counts": {"statuses": {"failed": 5}}}, resumable=True) == 0
    run_dir = RunDirectory(tmp_path / "run")
    run_dir.parts.mkdir(parents=True)
    lines = [{"group": 0, "unit": "a", "status": "passed"}, {"group": 0, "unit": "b", "status": "sandbox_error"},
             {"group": 1, "unit": "c", "status": "failed"}]
    (run_dir.parts / "rank0-old.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))
    members = [{"a", "b"}, {"c"}]
    assert sorted(run_dir.done_groups(members, redo_sandbox_errors=True)) == [1]
    assert sorted(run_dir.done_groups(members)) == [0, 1]  # waiting for the ranks: present is present
    rerun = [{"group": 0, "unit": "a", "status": "passed"}, {"group": 0, "unit": "b", "status": "failed"}]
    (run_dir.parts / "rank0-0new.jsonl").write_text("".join(json.dumps(line) + "\n" for line in rerun))
    merged = run_dir.done_groups(members)
    assert {record["unit"]: record["status"] for record in merged[0]} == {"a": "passed", "b": "failed"}


def _evaluate_once(tmp_path: Path, python: Path, cache: Path, name: str) -> tuple[subprocess.CompletedProcess, dict]:
    samples = tmp_path / "samples.jsonl"
    completion = "    return sorted(a.lower().replace(' ', '')) == sorted(b.lower().replace(' ', ''))\n"
    samples.write_text(json.dumps({"task_id": "core/he-is-anagram", "completion": completion}) + "\n")
    result = run_cli("-q", "evaluate", "--suite", "core", "--samples", str(samples), "--sandbox-python", str(python),
                     "--results-dir", str(tmp_path / "runs"), "--run-name", name,
                     env_extra={"HARNESS_CACHE": str(cache)})
    record = json.loads((tmp_path / "runs" / name / "samples.jsonl").read_text()) if result.returncode == 0 else {}
    return result, record


def test_the_verdict_cache_misses_when_the_sandbox_interpreter_gains_a_package(venv_under_tmp, tmp_path):
    cache = tmp_path / "cache"
    first, record = _evaluate_once(tmp_path, venv_under_tmp, cache, "first")
    assert first.returncode == 0 and record["passed"] and record["execution"] == "run", first.stderr[-2000:]
    _, record = _evaluate_once(tmp_path, venv_under_tmp, cache, "again")
    assert record["execution"] == "cache"
    site_packages = next((venv_under_tmp.parent.parent / "lib").glob("python3*/site-packages"))
    upgraded = site_packages / "numpy-99.0.dist-info"
    upgraded.mkdir()
    try:
        (upgraded / "METADATA").write_text("Metadata-Version: 2.1\nName: numpy\nVersion: 99.0\n")
        _, record = _evaluate_once(tmp_path, venv_under_tmp, cache, "upgraded")
        assert record["passed"] and record["execution"] == "run"
    finally:
        (upgraded / "METADATA").unlink()
        upgraded.rmdir()


def test_a_corrupt_verdict_cache_is_set_aside_and_rebuilt(tmp_path):
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / "verdicts.sqlite").write_bytes(b"this is not a database" * 100)
    result, record = _evaluate_once(tmp_path, Path(sys.executable), cache, "corrupt")
    assert result.returncode == 0, result.stderr[-2000:]
    assert record["passed"] and "unreadable" in result.stderr
    assert list(cache.glob("verdicts.sqlite.corrupt-*"))
    _, record = _evaluate_once(tmp_path, Path(sys.executable), cache, "rebuilt")
    assert record["execution"] == "cache"


def test_a_cache_folder_that_is_a_file_is_a_one_line_error(tmp_path):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("x")
    result, _ = _evaluate_once(tmp_path, Path(sys.executable), blocker, "blocked")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "HARNESS_CACHE" in result.stderr and blocker.read_text() == "x"
