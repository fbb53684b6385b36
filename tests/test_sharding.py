"""Data-parallel runs: identical results for 1 and 2 processes, resumable after kill -9 with another
process count, refused when the settings differ or another run holds the folder."""

from __future__ import annotations

import fcntl
import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ROOT, run_cli

# Sampling on, several batch groups, short generations: enough to catch any dependence on the shard count.
# The same intra-op thread count in every process, as the claim requires (one process would take all cores).
RUN = ["--model", "tiny-codegen", "--temperature", "0.8", "--num-samples", "2", "--limit", "5", "--batch-size", "3",
       "--max-new-tokens", "24", "--device", "cpu", "--seed", "7", "--threads", "1"]
TIMING_FIELDS = ("duration", "execution")  # wall time, and whether the verdict was run, shared or cached


def torchrun(*args: str, timeout: int = 600, processes: int = 2) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(processes),
                           "-m", "harness.cli", *args], cwd=ROOT, capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"})


def samples(run_dir: Path) -> list[dict]:
    lines = (run_dir / "samples.jsonl").read_text().splitlines()
    return [{k: v for k, v in json.loads(line).items() if k not in TIMING_FIELDS} for line in lines]


def scores(run_dir: Path) -> dict:
    summary = json.loads((run_dir / "summary.json").read_text())
    return {k: summary[k] for k in ("overall", "per_category", "per_problem", "failures_by_turn", "counts")}


@pytest.fixture(scope="module")
def single(tmp_path_factory):
    out = tmp_path_factory.mktemp("single")
    result = run_cli("run", *RUN, "--results-dir", str(out), "--run-name", "one")
    assert result.returncode == 0, result.stderr[-3000:]
    return out / "one"


def test_two_processes_give_identical_results(single, tmp_path):
    result = torchrun("run", *RUN, "--results-dir", str(tmp_path), "--run-name", "two")
    assert result.returncode == 0, result.stderr[-3000:]
    two = tmp_path / "two"
    assert samples(two) == samples(single)
    assert len(samples(two)) >= 10
    assert scores(two) == scores(single)
    ranks = json.loads((two / "summary.json").read_text())["timings"]["processes"]
    assert sorted(p["rank"] for p in ranks) == [0, 1] and all(p["world"] == 2 for p in ranks)


def test_killed_run_resumed_with_another_process_count_equals_the_uninterrupted_run(single, tmp_path):
    proc = subprocess.Popen([sys.executable, "-m", "harness.cli", "run", *RUN, "--results-dir", str(tmp_path),
                             "--run-name", "killed"], cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            env={**os.environ, "PYTHONPATH": str(ROOT)}, start_new_session=True)
    # Kill once at least one group is on disk, with more to come. The progress bar is redrawn after each
    # group's lines are flushed, counting the lines on disk: wait for it on the pipe, not on the clock.
    progress = b""
    while not any(int(done) >= 3 for done in re.findall(rb"(\d+)/\d+ \[", progress)):
        chunk = os.read(proc.stderr.fileno(), 4096)
        assert chunk, "the run ended before writing a group: " + progress.decode(errors="replace")[-2000:]
        progress += chunk
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    proc.stderr.close()
    parts = tmp_path / "killed" / "parts"
    written = sum(p.read_text().count("\n") for p in parts.glob("*.jsonl"))
    total = len(samples(single))
    assert 3 <= written < total and not (tmp_path / "killed" / "summary.json").exists()
    result = torchrun("run", *RUN, "--results-dir", str(tmp_path), "--run-name", "killed", "--resume")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "resuming" in result.stderr
    assert samples(tmp_path / "killed") == samples(single)
    assert scores(tmp_path / "killed") == scores(single)


def test_resume_with_different_settings_is_refused(single):
    result = run_cli("run", *[a if a != "0.8" else "0.2" for a in RUN], "--results-dir", str(single.parent),
                     "--run-name", "one", "--resume")
    assert result.returncode == 2
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "field 'temperature'" in errors[0] and "cannot resume" in errors[0]
    assert "Traceback" not in result.stderr
    assert samples(single)  # the finished run is untouched


def test_existing_folder_without_resume_is_refused(single):
    result = run_cli("run", *RUN, "--results-dir", str(single.parent), "--run-name", "one")
    assert result.returncode == 2 and "--resume" in result.stderr


def test_a_second_run_on_a_busy_folder_is_refused(single):
    with (single / "run.lock").open("a+") as held:
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)  # as a run in progress holds it
        result = run_cli("run", *RUN, "--results-dir", str(single.parent), "--run-name", "one", "--resume")
    assert result.returncode == 2 and "another run is writing" in result.stderr
