"""The verdict cache saves time, nothing more: a cache folder that is read-only or fills up during a command
costs the cache, never the command nor its results (the reference-times cache already worked so). The folder
is made so by bubblewrap, the sandbox's own dependency: a real read-only mount, a real full tmpfs."""

from __future__ import annotations

import gzip
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ROOT, needs_shared_data, python_for_sandbox_none

PROGRAMS = 40  # HumanEval's first canonical solutions: enough verdicts to fill the small tmpfs below


def _mounted(kind: str, folder: Path) -> list[str]:
    """The argv prefix that runs a command with ``folder`` read-only, or on a 96 KiB tmpfs (room for the
    cache's first pages and the reference times, not for every verdict)."""
    mount = (["--ro-bind", str(folder), str(folder)] if kind == "read-only"
             else ["--size", str(96 * 1024), "--tmpfs", str(folder)])
    return mount_argv(mount)


def mount_argv(mount: list[str]) -> list[str]:
    """``bwrap`` with the host's root and ``mount`` (bubblewrap options) on top, checked to work: skipped where
    it cannot, but under ``CI=true`` (which installs bubblewrap) that is a failure, as in the hostile tests."""
    argv = ["bwrap", "--dev-bind", "/", "/", *mount, "--"]
    why = ("needs bubblewrap" if not shutil.which("bwrap")
           else "" if subprocess.run([*argv, "true"], capture_output=True).returncode == 0
           else "bubblewrap cannot make a mount here")
    if why and os.environ.get("CI") == "true":
        pytest.fail(why + ": CI installs bubblewrap, so these tests must run there")
    if why:
        pytest.skip(why)
    return argv


@pytest.mark.parametrize("kind", ["read-only", "full"])
def test_a_cache_folder_that_cannot_be_written_costs_the_cache_not_the_results(tmp_path, kind):
    data = needs_shared_data("HumanEval.jsonl.gz")
    problems = [json.loads(line) for line in gzip.open(data, "rt")][:PROGRAMS]
    samples = tmp_path / "samples.jsonl"
    samples.write_text("".join(json.dumps({"task_id": p["task_id"], "completion": p["canonical_solution"]}) + "\n"
                               for p in problems))
    cache = tmp_path / "cache"
    cache.mkdir()
    if kind == "read-only":  # a cache an earlier command wrote, now on a read-only mount
        from harness.execution.verdict_cache import VerdictCache

        VerdictCache(cache / "verdicts.sqlite", sys.executable).close()
    before = sorted(os.listdir(cache))
    out = subprocess.run(
        [*_mounted(kind, cache), sys.executable, "-m", "harness.cli", "evaluate", "--suite", "humaneval",
         "--data", str(data), "--samples", str(samples), "--workers", "2", "--sandbox", "none",
         "--sandbox-python", python_for_sandbox_none(),
         "--results-dir", str(tmp_path / "results"), "--run-name", "r"],
        cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT), "HARNESS_CACHE": str(cache)},
        capture_output=True, text=True, timeout=600)
    assert out.returncode == 0 and "Traceback" not in out.stderr, out.stderr[-3000:]
    summary = json.loads((tmp_path / "results" / "r" / "summary.json").read_text())
    assert summary["timings"]["executions"]["executed"] == PROGRAMS, summary["timings"]
    lines = (tmp_path / "results" / "r" / "samples.jsonl").read_text().splitlines()
    assert len(lines) == PROGRAMS and all(json.loads(line)["status"] == "passed" for line in lines)
    warnings = [line for line in out.stderr.splitlines() if "verdict cache" in line]
    assert len(warnings) == 1 and str(cache / "verdicts.sqlite") in warnings[0], out.stderr[-3000:]
    assert "without it" in warnings[0], warnings
    assert kind != "full" or "disk is full" in warnings[0], warnings
    assert sorted(os.listdir(cache)) == before  # read-only: nothing moved aside as if it were not a database
