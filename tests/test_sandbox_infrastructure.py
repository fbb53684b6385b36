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
from harness.commands import INFRASTRUCTURE_FAILURE, _infrastructure_status
from harness.runs.folder.run_folder import RunFolder
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
                  "--sandbox-python", str(venv_under_tmp), "--sandbox", "full", "--no-verdict-cache",
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
    run_dir = RunFolder(tmp_path / "run")
    run_dir.parts.mkdir(parents=True)
    lines = [{"group": 0, "unit": "a", "status": "passed"}, {"group": 0, "unit": "b", "status": "sandbox_error"},
             {"group": 1, "unit": "c", "status": "failed"}]
    (run_dir.parts / "rank0-old.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))
    members = [{"a", "b"}, {"c"}]
    earlier = set(run_dir.sample_files())
    # Resuming: the group with a sandbox failure is to be done again, and rank 0 waits for its new lines.
    assert sorted(run_dir.done_groups(members, stale=earlier)) == [1]
    rerun = [{"group": 0, "unit": "a", "status": "passed"}, {"group": 0, "unit": "b", "status": "failed"}]
    (run_dir.parts / "rank1-0new.jsonl").write_text(json.dumps(rerun[0]) + "\n")
    assert sorted(run_dir.done_groups(members, stale=earlier)) == [1]  # half of the rerun is not done
    (run_dir.parts / "rank1-0new.jsonl").write_text("".join(json.dumps(line) + "\n" for line in rerun))
    merged = run_dir.done_groups(members, stale=earlier)
    assert {record["unit"]: record["status"] for record in merged[0]} == {"a": "passed", "b": "failed"}
    # A sandbox failure written by this attempt is a result: the run ends (and exits 3) instead of waiting.
    assert sorted(run_dir.done_groups(members)) == [0, 1]
