"""A hand-edited ``summary.json`` whose entries are ``null`` (JSON's None) is read by ``view``, ``report`` and
``compare`` as the run folder's other damage is: a required entry (suite, overall, per_problem) refused in one
line, exit 2; an optional one (model, per_category, timings...) as if absent. It ended in a traceback."""

from __future__ import annotations

import json
import shutil

import pytest

from conftest import refused_in_process, run_cli


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    results = tmp_path_factory.mktemp("results")
    out = run_cli("run", "--suite", "core", "--model", "reference", "--limit", "1", "--results-dir", str(results),
                  "--run-name", "r")
    assert out.returncode == 0, out.stderr[-2000:]
    return results / "r"


def edited(finished, tmp_path, key):
    folder = tmp_path / f"null-{key}"
    shutil.copytree(finished, folder)
    summary = json.loads((folder / "summary.json").read_text())
    summary[key] = None
    (folder / "summary.json").write_text(json.dumps(summary))
    return folder


@pytest.mark.parametrize("key", ["suite", "overall", "per_problem"])
def test_a_required_entry_set_to_null_is_one_line(finished, tmp_path, capsys, key):
    folder = edited(finished, tmp_path, key)
    line = refused_in_process(["view", str(folder), "--out", str(tmp_path / "v.html")], capsys)
    assert f"field '{key}'" in line and "summary.json" in line, line
    line = refused_in_process(["compare", "--baseline", str(folder), "--candidate", str(finished)], capsys)
    assert f"field '{key}'" in line, line


@pytest.mark.parametrize("key", ["model", "per_category", "timings", "config"])
def test_an_optional_entry_set_to_null_reads_as_absent(finished, tmp_path, key):
    from harness.cli import main

    folder = edited(finished, tmp_path, key)
    assert main(["view", str(folder), "--out", str(tmp_path / "v.html")]) == 0
    assert main(["report", str(folder), "--out", str(tmp_path / "report")]) == 0
