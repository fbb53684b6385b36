"""Nothing a user types loses data: run names cannot leave --results-dir, --overwrite replaces only a
finished folder the harness made and no live run holds, --resume never deletes, and a failed start
leaves nothing in the way. Every case checks on disk that nothing outside the run folder changed, with a
decoy tree around the results folder."""

from __future__ import annotations

import fcntl
import json
import os
from pathlib import Path

import pytest
import yaml

REFERENCE = ["--model", "reference", "--problems", "core/vowel-count"]


def snapshot(root: Path) -> dict[str, str]:
    """Every path under ``root`` with its content (files), its target (links) or 'dir'."""
    state = {}
    for path in sorted(root.rglob("*")):
        key = str(path.relative_to(root))
        if path.is_symlink():
            state[key] = "link->" + os.readlink(path)
        elif path.is_dir():
            state[key] = "dir"
        else:
            state[key] = path.read_bytes().hex()
    return state


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """tmp/project/{keep.txt, results/{old/..., users-notes/...}}, tmp/other/{data.txt}: decoys all round."""
    project = tmp_path / "project"
    (project / "results" / "users-notes").mkdir(parents=True)
    (project / "keep.txt").write_text("the project\n")
    (project / "results" / "users-notes" / "notes.md").write_text("not a run\n")
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "data.txt").write_text("unrelated\n")
    return tmp_path


def one_error_line(out) -> str:
    lines = out.stderr.strip().splitlines()
    assert out.returncode == 2, out.stderr
    assert len(lines) == 1 and lines[0].startswith("error:") and "Traceback" not in out.stderr, out.stderr
    return lines[0]


def finished_run(cli, results: Path, name: str) -> Path:
    out = cli("-q", "run", *REFERENCE, "--results-dir", str(results), "--run-name", name)
    assert out.returncode == 0, out.stderr
    return results / name


@pytest.mark.parametrize("name", ["..", ".", "../../other", "../other", "a/b", "/tmp", "x" * 129, "x" * 300,
                                  "with space", "", "-"])
def test_a_run_name_that_is_not_one_folder_name_is_refused_and_nothing_is_touched(cli, tree, name):
    results = tree / "project" / "results"
    before = snapshot(tree)
    out = cli("run", *REFERENCE, "--results-dir", str(results), "--run-name", name, "--overwrite")
    if name == "-":  # a valid name: the run goes ahead, in its own folder only
        assert out.returncode == 0, out.stderr
        after = snapshot(tree)
        assert {k: v for k, v in after.items() if not k.startswith("project/results/-")} == before
        return
    assert "run_name" in one_error_line(out)
    assert snapshot(tree) == before


def test_evaluate_refuses_such_names_too(cli, tree):
    results = tree / "project" / "results"
    samples = tree / "samples.jsonl"
    samples.write_text(json.dumps({"task_id": "core/he-roman", "completion": ""}) + "\n")
    before = snapshot(tree)
    out = cli("evaluate", "--suite", "core", "--samples", str(samples), "--results-dir", str(results),
              "--run-name", "..", "--overwrite")
    assert "--run-name" in one_error_line(out)
    assert snapshot(tree) == before


def test_overwrite_never_touches_a_folder_the_harness_did_not_make(cli, tree):
    results = tree / "project" / "results"
    before = snapshot(tree)
    out = cli("run", *REFERENCE, "--results-dir", str(results), "--run-name", "users-notes", "--overwrite")
    assert "not made by run-benchmark" in one_error_line(out)
    assert snapshot(tree) == before


def test_overwrite_refuses_a_run_folder_holding_a_users_file(cli, tree):
    results = tree / "project" / "results"
    run = finished_run(cli, results, "r1")
    (run / "analysis.ipynb").write_text("{}")
    before = snapshot(tree)
    out = cli("run", *REFERENCE, "--results-dir", str(results), "--run-name", "r1", "--overwrite")
    assert "'analysis.ipynb'" in one_error_line(out)
    assert snapshot(tree) == before


def test_overwrite_replaces_a_finished_run_and_nothing_else(cli, tree):
    results = tree / "project" / "results"
    run = finished_run(cli, results, "r1")
    (run / "summary.json").write_text("{}")  # so we can see it was replaced
    outside = {k: v for k, v in snapshot(tree).items() if not k.startswith("project/results/r1")}
    out = cli("-q", "run", *REFERENCE, "--results-dir", str(results), "--run-name", "r1", "--overwrite")
    assert out.returncode == 0, out.stderr
    assert json.loads((run / "summary.json").read_text())["overall"]["pass_rate"] == 1.0
    assert {k: v for k, v in snapshot(tree).items() if not k.startswith("project/results/r1")} == outside
    assert not (run / "run.lock").exists()


def test_a_symlinked_run_folder_is_refused(cli, tree):
    results = tree / "project" / "results"
    (results / "link").symlink_to(tree / "other")
    before = snapshot(tree)
    out = cli("run", *REFERENCE, "--results-dir", str(results), "--run-name", "link", "--overwrite")
    assert "symbolic link" in one_error_line(out)
    assert snapshot(tree) == before


def test_resume_with_overwrite_on_a_folder_without_config_deletes_nothing(cli, tree):
    results = tree / "project" / "results"
    samples = tree / "samples.jsonl"
    samples.write_text(json.dumps({"task_id": "core/he-roman", "completion": "    return ''\n"}) + "\n")
    out = cli("-q", "evaluate", "--suite", "core", "--samples", str(samples), "--results-dir", str(results),
              "--run-name", "ev")
    assert out.returncode == 0, out.stderr
    before = snapshot(tree)
    for name in ("ev", "users-notes"):  # a marked folder that is not a `run`'s, and a folder of the user's
        out = cli("run", *REFERENCE, "--results-dir", str(results), "--run-name", name, "--resume", "--overwrite")
        one_error_line(out)
        assert snapshot(tree) == before


@pytest.mark.parametrize("command", ["run", "evaluate"])
def test_overwrite_never_removes_the_folder_of_a_live_run(cli, tree, command):
    results = tree / "project" / "results"
    run = finished_run(cli, results, "live")
    samples = tree / "samples.jsonl"
    samples.write_text(json.dumps({"task_id": "core/he-roman", "completion": ""}) + "\n")
    args = {"run": ["run", *REFERENCE],
            "evaluate": ["evaluate", "--suite", "core", "--samples", str(samples)]}[command]
    with (run / "run.lock").open("a+") as held:
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)  # what a run in progress holds
        before = snapshot(tree)
        out = cli(*args, "--results-dir", str(results), "--run-name", "live", "--overwrite")
        assert "another run is writing" in one_error_line(out)
        assert snapshot(tree) == before


def test_a_config_boolean_must_be_a_boolean(cli, tree):
    results = tree / "project" / "results"
    finished_run(cli, results, "r1")
    config = tree / "run.yaml"
    config.write_text(yaml.safe_dump({"overwrite": "no", "model": "reference"}))
    before = snapshot(tree)
    out = cli("run", "--config", str(config), "--results-dir", str(results), "--run-name", "r1")
    line = one_error_line(out)
    assert "field 'overwrite'" in line and "true or false" in line and "run.yaml" in line
    assert snapshot(tree) == before


def test_a_failed_start_leaves_no_folder_and_the_corrected_rerun_works(cli, tree):
    results = tree / "project" / "results"
    before = snapshot(tree)
    out = cli("-q", "run", "--model", str(tree / "no-such-model"), "--results-dir", str(results), "--run-name", "fix")
    assert "model path does not exist" in one_error_line(out)
    assert snapshot(tree) == before
    out = cli("-q", "run", *REFERENCE, "--results-dir", str(results), "--run-name", "fix")
    assert out.returncode == 0, out.stderr


def test_a_stub_from_a_killed_start_does_not_block_the_rerun(cli, tree):
    """A process killed while loading its model (no chance to clean up) leaves a marked folder without
    samples: the rerun reuses it without --overwrite."""
    results = tree / "project" / "results"
    stub = results / "stub"
    (stub / "parts").mkdir(parents=True)
    for name in (".run-benchmark", "run.lock", "config.yaml"):
        (stub / name).write_text("")
    out = cli("-q", "run", *REFERENCE, "--results-dir", str(results), "--run-name", "stub")
    assert out.returncode == 0, out.stderr
    assert (stub / "summary.json").exists()


def test_results_dir_that_is_a_file_is_one_line(cli, tree):
    target = tree / "other" / "data.txt"
    before = snapshot(tree)
    out = cli("run", *REFERENCE, "--results-dir", str(target), "--run-name", "r")
    assert "results_dir" in one_error_line(out)
    assert snapshot(tree) == before
