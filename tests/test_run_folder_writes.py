"""What the harness writes or deletes inside a run folder: only its own files, never through a symbolic link
planted there, never a run's own files from ``view --out`` or ``compare --markdown``, and nothing at all when
a finished run is resumed (docs/scaling-out.md's SLURM scripts pass ``--resume`` or a shard on every requeue). Every
refusal is one line, exit 2 (checked in-process where it comes before any work), and every case checks on
disk that nothing else changed."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from conftest import refused_in_process, run_cli
from test_run_folder_safety import snapshot

PROBLEMS = ["--model", "reference", "--problems", "core/vowel-count,core/he-roman,core/he-is-anagram",
            "--batch-size", "1"]


def run(results: Path, name: str, *extra: str):
    return run_cli("-q", "run", *PROBLEMS, "--results-dir", str(results), "--run-name", name, *extra)


@pytest.fixture(scope="module")
def finished(tmp_path_factory) -> Path:
    results = tmp_path_factory.mktemp("finished")
    out = run(results, "r")
    assert out.returncode == 0, out.stderr[-3000:]
    return results / "r"


@pytest.fixture
def tree(tmp_path: Path, finished: Path) -> Path:
    """tmp/results/r (a copy of a finished run) and tmp/outside/{config.yaml,data.txt,dir/}: what a link may
    point at."""
    outside = tmp_path / "outside"
    (outside / "dir").mkdir(parents=True)
    (outside / "data.txt").write_text("the user's\n")
    shutil.copytree(finished, tmp_path / "results" / "r")
    shutil.copy(finished / "config.yaml", outside / "config.yaml")
    return tmp_path


def interrupted(run_dir: Path) -> Path:
    """As a run killed before its merge leaves its folder: the config, the part files, no results."""
    (run_dir / "parts").mkdir()
    (run_dir / "summary.json").unlink()
    (run_dir / "samples.jsonl").unlink()
    return run_dir


@pytest.mark.parametrize("plant", ["parts/notes.txt", "samples.jsonl/notes.txt", "parts/sub/rank0-0.jsonl"])
def test_overwrite_refuses_a_users_file_anywhere_inside_the_run_folder(tree, plant, capsys):
    run_dir = tree / "results" / "r"
    if plant.startswith("samples.jsonl/"):
        (run_dir / "samples.jsonl").unlink()
    (run_dir / plant).parent.mkdir(parents=True, exist_ok=True)
    (run_dir / plant).write_text("mine\n")
    before = snapshot(tree)
    line = refused_in_process(["run", *PROBLEMS, "--results-dir", str(tree / "results"), "--run-name", "r",
                               "--overwrite"], capsys)
    assert plant.split("/")[-1] in line and "field 'overwrite'" in line, line
    assert snapshot(tree) == before


@pytest.mark.parametrize("command", ["view", "compare"])
@pytest.mark.parametrize("target", ["summary.json", "samples.jsonl", "config.yaml", ".run-benchmark"])
def test_view_and_compare_never_write_over_a_runs_own_files(tree, command, target, capsys):
    run_dir = tree / "results" / "r"
    before = snapshot(tree)
    args = (["view", str(run_dir), "--out"] if command == "view"
            else ["compare", "--baseline", str(run_dir), "--candidate", str(run_dir), "--markdown"])
    line = refused_in_process([*args, str(run_dir / target)], capsys)
    assert target in line and "run folder" in line, line
    assert snapshot(tree) == before


@pytest.mark.parametrize("name, points_to", [
    ("config.yaml", "outside/config.yaml"), ("parts", "outside/dir"), (".run-benchmark", "outside/new.txt"),
    ("samples.jsonl.tmp", "outside/data.txt"), ("summary.json.tmp", "outside/data.txt"),
    ("run.lock", "outside/data.txt")])
def test_resume_never_writes_through_a_link_planted_in_the_run_folder(tree, name, points_to, capsys):
    run_dir = interrupted(tree / "results" / "r")
    planted = run_dir / name
    if planted.is_dir():
        planted.rmdir()
    planted.unlink(missing_ok=True)
    planted.symlink_to(tree / points_to)
    before = snapshot(tree)
    line = refused_in_process(["run", *PROBLEMS, "--results-dir", str(tree / "results"), "--run-name", "r",
                               "--resume"], capsys)
    assert (name in line and "symbolic link" in line) or (name == ".run-benchmark" and "no marker file" in line), line
    assert snapshot(tree) == before


def test_a_finished_run_resumed_changes_nothing_and_exits_0(tree):
    results = tree / "results"
    before = snapshot(tree)
    again = run(results, "r", "--resume")
    assert again.returncode == 0, again.stderr[-3000:]
    assert "finished" in again.stdout and "nothing to do" in again.stdout, again.stdout
    assert snapshot(tree) == before


def test_a_requeued_shard_after_the_merge_changes_nothing_nor_does_the_merge_after_it(tmp_path):
    results = tmp_path / "results"
    for index, extra in ((0, []), (1, ["--merge-when-complete"])):
        done = run(results, "s", "--shard", f"{index}/2", *extra)
        assert done.returncode == 0, done.stderr[-3000:]
    merged = snapshot(tmp_path)
    assert json.loads((results / "s" / "summary.json").read_text())["timings"]["executions"]["requested"] == 6
    for extra in ([], ["--merge-when-complete"], ["--resume"]):  # a requeued task, as docs/scaling-out.md's scripts run it
        again = run(results, "s", "--shard", "0/2", *extra)
        assert again.returncode == 0 and "nothing to do" in again.stdout, again.stderr[-3000:] + again.stdout
        assert snapshot(tmp_path) == merged
    merge = run_cli("merge", str(results / "s"))
    assert merge.returncode == 0 and "merged already" in merge.stdout, merge.stderr[-3000:] + merge.stdout
    assert snapshot(tmp_path) == merged


def test_a_shard_started_in_a_finished_plain_runs_folder_changes_nothing(tree):
    before = snapshot(tree)
    for spec in ("0/2", "1/3"):
        again = run(tree / "results", "r", "--shard", spec)
        assert again.returncode == 0 and "nothing to do" in again.stdout, again.stderr[-3000:] + again.stdout
        assert snapshot(tree) == before
