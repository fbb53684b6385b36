"""Job-array shards (``run --shard i/N``) and ``run-benchmark merge``: three shards run as separate processes
(no torchrun), one killed with SIGKILL and rerun, give the samples of a one-process run; bad input is
refused with one line, exit 2, and nothing in the folder changes."""

from __future__ import annotations

import fcntl
import json
import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ROOT, refused_in_process, run_cli
from harness.runs.launch.shards import Shard, resolve

# Sampling on, several batch groups per shard, short generations, one intra-op thread everywhere.
RUN = ["--model", "tiny-codegen", "--temperature", "0.8", "--num-samples", "2", "--limit", "4", "--batch-size", "2",
       "--max-new-tokens", "16", "--device", "cpu", "--seed", "7", "--threads", "1"]
TIMING_FIELDS = ("duration", "execution")  # wall time, and whether the verdict was run, shared or cached
SHARDS = 3


def samples(run_dir: Path) -> list[dict]:
    lines = (run_dir / "samples.jsonl").read_text().splitlines()
    return [{k: v for k, v in json.loads(line).items() if k not in TIMING_FIELDS} for line in lines]


def scores(run_dir: Path) -> dict:
    summary = json.loads((run_dir / "summary.json").read_text())
    return {k: summary[k] for k in ("overall", "per_category", "per_problem", "failures_by_turn", "counts", "model",
                                    "prompt_format", "sandbox", "ks", "seed")}


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file of a folder with its bytes (a refusal must leave all of them as they were), but the lock
    files' contents: who last held them."""
    return {str(p.relative_to(folder)): b"" if p.suffix == ".lock" else p.read_bytes()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def shard(run_dir: Path, index: int, *extra: str) -> subprocess.CompletedProcess:
    result = run_cli("run", *RUN, "--results-dir", str(run_dir.parent), "--run-name", run_dir.name,
                     "--shard", f"{index}/{SHARDS}", *extra)
    assert result.returncode == 0, result.stderr[-3000:]
    return result


def merge(run_dir: Path) -> subprocess.CompletedProcess:
    return run_cli("merge", str(run_dir))


def one_line_refusal(result: subprocess.CompletedProcess) -> str:
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert result.returncode == 2 and len(errors) == 1 and "Traceback" not in result.stderr, result.stderr[-3000:]
    return errors[0]


@pytest.fixture(scope="module")
def single(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("single")
    result = run_cli("run", *RUN, "--results-dir", str(out), "--run-name", "one")
    assert result.returncode == 0, result.stderr[-3000:]
    return out / "one"


@pytest.fixture(scope="module")
def unmerged(tmp_path_factory) -> Path:
    """A folder every shard has finished and nobody has merged yet (tests work on copies)."""
    run_dir = tmp_path_factory.mktemp("shards") / "sharded"
    for index in range(SHARDS):
        assert "its groups are done" in shard(run_dir, index).stdout
    assert not (run_dir / "samples.jsonl").exists() and not (run_dir / "summary.json").exists()
    return run_dir


def copy_of(run_dir: Path, tmp_path: Path) -> Path:
    copy = tmp_path / run_dir.name
    shutil.copytree(run_dir, copy)
    return copy


def parts_of(run_dir: Path, index: int) -> list[Path]:
    return sorted((run_dir / "parts").glob(f"shard{index}of{SHARDS}-*.jsonl"))


def test_a_killed_shard_rerun_and_the_last_shard_merging_equal_the_one_process_run(single, tmp_path):
    run_dir = tmp_path / "killed"
    proc = subprocess.Popen([sys.executable, "-m", "harness.cli", "run", *RUN, "--results-dir", str(tmp_path),
                             "--run-name", "killed", "--shard", f"0/{SHARDS}"], cwd=ROOT, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, env={**os.environ, "PYTHONPATH": str(ROOT)},
                            start_new_session=True)
    # Kill once its first group is on disk (the bar is redrawn after each group's lines are flushed, counting
    # the lines on disk): wait on the pipe, not on the clock.
    progress = b""
    while not any(int(done) >= 2 for done in re.findall(rb"(\d+)/\d+ \[", progress)):
        chunk = os.read(proc.stderr.fileno(), 4096)
        assert chunk, "the shard ended before writing a group: " + progress.decode(errors="replace")[-2000:]
        progress += chunk
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    proc.stderr.close()
    written = sum(p.read_text().count("\n") - 1 for p in parts_of(run_dir, 0))
    shard_total = sum(1 for s in samples(single) if s["group"] % SHARDS == 0)
    assert 2 <= written < shard_total
    shard(run_dir, 1)
    shard(run_dir, 2)
    before = snapshot(run_dir)
    refusal = one_line_refusal(merge(run_dir))
    assert "cannot merge" in refusal and f"shard(s) 0/{SHARDS}" in refusal and f"1/{SHARDS}" not in refusal
    assert snapshot(run_dir) == before
    rerun = shard(run_dir, 0, "--merge-when-complete")
    assert "resuming" in rerun.stderr and "results:" in rerun.stdout
    assert samples(run_dir) == samples(single)
    assert scores(run_dir) == scores(single)
    assert not (run_dir / "parts").exists() and not (run_dir / "run.lock").exists()
    processes = json.loads((run_dir / "summary.json").read_text())["timings"]["processes"]
    # the killed attempt left no timings
    assert sorted(p["shard"] for p in processes) == [f"{i}/{SHARDS}" for i in range(SHARDS)]


def test_shards_started_together_into_a_new_folder_merge_once(single, tmp_path):
    """As a job array starts them: all at once, the first to arrive records the config; the last to finish
    merges, and every other one says why it did not."""
    tasks = [subprocess.Popen([sys.executable, "-m", "harness.cli", "run", *RUN, "--results-dir", str(tmp_path),
                               "--run-name", "together", "--shard", f"{index}/{SHARDS}", "--merge-when-complete"],
                              cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              env={**os.environ, "PYTHONPATH": str(ROOT)}) for index in range(SHARDS)]
    outputs = [task.communicate(timeout=600) for task in tasks]
    assert [task.returncode for task in tasks] == [0] * SHARDS, [err[-2000:] for _, err in outputs]
    assert sum("results:" in out for out, _ in outputs) == 1
    assert sum("its groups are done" in out for out, _ in outputs) == SHARDS - 1
    assert samples(tmp_path / "together") == samples(single)
    assert scores(tmp_path / "together") == scores(single)


def test_merge_of_finished_shards_equals_the_one_process_run(single, unmerged, tmp_path):
    run_dir = copy_of(unmerged, tmp_path)
    result = merge(run_dir)
    assert result.returncode == 0, result.stderr[-3000:]
    assert samples(run_dir) == samples(single)
    assert scores(run_dir) == scores(single)
    # merged: a shard of another count is welcome now, and finds nothing left to do
    again = run_cli("run", *RUN, "--results-dir", str(tmp_path), "--run-name", run_dir.name, "--shard", "1/2")
    assert again.returncode == 0, again.stderr[-3000:]
    assert samples(run_dir) == samples(single)


def test_merge_with_a_missing_group_names_its_shard_and_changes_nothing(unmerged, tmp_path):
    run_dir = copy_of(unmerged, tmp_path)
    for part in parts_of(run_dir, 1):
        part.unlink()
    before = snapshot(run_dir)
    refusal = one_line_refusal(merge(run_dir))
    assert f"shard(s) 1/{SHARDS}" in refusal and f"0/{SHARDS}" not in refusal
    assert snapshot(run_dir) == before


def test_merge_with_a_torn_last_line_counts_its_group_missing_and_deletes_nothing(unmerged, tmp_path):
    run_dir = copy_of(unmerged, tmp_path)
    part = parts_of(run_dir, 2)[0]
    lines = part.read_bytes().splitlines(keepends=True)
    last_group = json.loads(lines[-1])["group"]
    part.write_bytes(b"".join(lines[:-1]) + lines[-1][: len(lines[-1]) // 2])  # as a SIGKILL mid-write leaves it
    before = snapshot(run_dir)
    refusal = one_line_refusal(merge(run_dir))
    assert f"({last_group})" in refusal and f"shard(s) 2/{SHARDS}" in refusal
    assert snapshot(run_dir) == before


def test_merge_refuses_parts_written_under_another_config(unmerged, tmp_path):
    other = tmp_path / "other" / "sharded"
    hotter = [a if a != "0.8" else "0.5" for a in RUN]
    result = run_cli("run", *hotter, "--results-dir", str(other.parent), "--run-name", "sharded",
                     "--shard", f"0/{SHARDS}")
    assert result.returncode == 0, result.stderr[-3000:]
    run_dir = copy_of(unmerged, tmp_path)
    for part in parts_of(run_dir, 0):
        part.unlink()
    stranger = parts_of(other, 0)[0]
    shutil.copy(stranger, run_dir / "parts" / stranger.name)
    before = snapshot(run_dir)
    refusal = one_line_refusal(merge(run_dir))
    assert stranger.name in refusal and "another config" in refusal
    assert snapshot(run_dir) == before


def test_another_shard_count_is_refused_until_a_merge(unmerged, tmp_path, capsys):
    run_dir = copy_of(unmerged, tmp_path)
    before = snapshot(run_dir)
    refusal = refused_in_process(["run", *RUN, "--results-dir", str(tmp_path), "--run-name", run_dir.name,
                                  "--shard", "0/2"], capsys)
    assert f"written by {SHARDS} shards" in refusal and "run-benchmark merge" in refusal
    assert snapshot(run_dir) == before


def test_a_live_shard_refuses_a_second_task_of_it_a_plain_run_an_overwrite_and_a_merge(unmerged, tmp_path, capsys):
    run_dir = copy_of(unmerged, tmp_path)
    before = snapshot(run_dir)
    where = ["--results-dir", str(tmp_path), "--run-name", run_dir.name]
    with (run_dir / "run.lock").open("a+") as folder, (run_dir / "parts" / "shard1.lock").open("a+") as own:
        fcntl.flock(folder, fcntl.LOCK_SH | fcntl.LOCK_NB)  # as a live shard 1 holds them
        fcntl.flock(own, fcntl.LOCK_EX | fcntl.LOCK_NB)
        assert "shard 1 is already running" in refused_in_process(["run", *RUN, *where, "--shard", "1/3"], capsys)
        for plain in (["--resume"], ["--overwrite"]):
            assert "another run is writing" in refused_in_process(["run", *RUN, *where, *plain], capsys)
        assert "another run is writing" in refused_in_process(["merge", str(run_dir)], capsys)
    assert snapshot(run_dir) == before


@pytest.mark.parametrize("spec, says", [("3/3", "below the number of shards"), ("x", "must be i/N"),
                                        ("1/0", "number of shards must be"), ("-1/3", "must be i/N")])
def test_bad_shard_specs_are_refused_before_anything_is_written(spec, says, tmp_path, capsys):
    refusal = refused_in_process(["run", *RUN, "--results-dir", str(tmp_path), "--run-name", "r",
                                  f"--shard={spec}"], capsys)
    assert "field 'shard'" in refusal and says in refusal
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize("flags, field", [(["--shard", "0/3", "--overwrite"], "overwrite"),
                                          (["--merge-when-complete"], "merge_when_complete")])
def test_options_that_do_not_go_with_sharding_are_refused(flags, field, tmp_path, capsys):
    refusal = refused_in_process(["run", *RUN, "--results-dir", str(tmp_path), "--run-name", "r", *flags], capsys)
    assert f"field '{field}'" in refusal
    assert not (tmp_path / "r").exists()


def test_shard_from_a_slurm_array_or_a_kubernetes_indexed_job():
    slurm = {"SLURM_ARRAY_TASK_ID": "12", "SLURM_ARRAY_TASK_MIN": "10", "SLURM_ARRAY_TASK_COUNT": "8"}
    assert resolve("auto", slurm) == Shard(2, 8)
    assert resolve("auto/8", {"JOB_COMPLETION_INDEX": "7"}) == Shard(7, 8)
    assert resolve("4/8", {}) == Shard(4, 8) and resolve(None, slurm) is None


@pytest.mark.parametrize("spec, environ, says", [
    ("auto", {}, "SLURM_ARRAY_TASK_ID"),
    ("auto/8", {}, "JOB_COMPLETION_INDEX"),
    ("auto/8", {"JOB_COMPLETION_INDEX": "8"}, "not below the number of shards"),
    ("auto", {"SLURM_ARRAY_TASK_ID": "x", "SLURM_ARRAY_TASK_COUNT": "2"}, "whole number"),
])
def test_shard_auto_without_its_variables_is_refused(spec, environ, says, tmp_path, capsys, monkeypatch):
    for name in ("SLURM_ARRAY_TASK_ID", "SLURM_ARRAY_TASK_MIN", "SLURM_ARRAY_TASK_COUNT", "JOB_COMPLETION_INDEX"):
        monkeypatch.delenv(name, raising=False)
    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    refusal = refused_in_process(["run", *RUN, "--results-dir", str(tmp_path), "--run-name", "r", "--shard", spec],
                                 capsys)
    assert says in refusal
    assert not (tmp_path / "r").exists()
