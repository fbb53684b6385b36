"""The report's fixes: a run given twice is reported once, runs of the same name are told apart, the plots'
axes stay within 0-100% with every label inside the picture and a legend naming model and size, and each
run's samples are linked as a browsable page. Built from the committed baseline run (a real tiny-model run)
and copies of it that record other sizes."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

from conftest import ROOT, run_cli
from harness.reports.finished_runs import load_run
from harness.reports.report import category_figure, runs_table, size_figure

BASELINE = ROOT / "results" / "baselines" / "core-tiny-codegen"


def _copy(to: Path, **model: object) -> Path:
    """The baseline under another folder, recording another model (a different run as far as a report goes)."""
    shutil.copytree(BASELINE, to)
    summary = json.loads((to / "summary.json").read_text())
    summary["model"].update(model)
    (to / "summary.json").write_text(json.dumps(summary))
    return to


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open() as handle:
        return list(csv.DictReader(handle))


def test_a_run_given_twice_is_reported_once(tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(BASELINE, copy)
    result = run_cli("report", str(BASELINE), str(BASELINE), str(copy), "--out", str(tmp_path / "report"))
    assert result.returncode == 0, result.stderr
    assert [row["run"] for row in _rows(tmp_path / "report" / "report.csv")] == ["core-tiny-codegen"]
    assert result.stderr.count("given more than once") == 2
    page = (tmp_path / "report" / "report.html").read_text()
    assert '<a href="view-1.html">core-tiny-codegen</a>' in page and not (tmp_path / "report" / "view-2.html").exists()
    assert "[core-tiny-codegen](view-1.html)" in (tmp_path / "report" / "report.md").read_text()
    assert "core/binary-search/case0/sample0" not in (tmp_path / "report" / "view-1.html").read_text()  # compressed


def test_runs_of_the_same_name_are_told_apart(tmp_path):
    first = _copy(tmp_path / "a" / "run", parameters=350_000_000)
    second = _copy(tmp_path / "b" / "run", parameters=2_700_000_000)
    result = run_cli("report", str(first), str(second), "--out", str(tmp_path / "report"))
    assert result.returncode == 0, result.stderr
    assert sorted(row["run"] for row in _rows(tmp_path / "report" / "report.csv")) == ["a/run", "b/run"]
    table = (tmp_path / "report" / "report.md").read_text().split("## Per category")[1].splitlines()[2]
    assert "a/run" in table and "b/run" in table


def _inside(figure, artists) -> None:
    figure.canvas.draw()
    renderer = figure.canvas.get_renderer()
    frame = figure.bbox
    for artist in artists:
        box = artist.get_window_extent(renderer)
        assert frame.x0 - 0.5 <= box.x0 and box.x1 <= frame.x1 + 0.5, artist
        assert frame.y0 - 0.5 <= box.y0 and box.y1 <= frame.y1 + 0.5, artist


def test_size_plot_axis_and_legend(tmp_path):
    big = _copy(tmp_path / "big", model="Salesforce/codegen-2B-mono", parameters=2_700_000_000,
                family={"family": "codegen", "variant": "mono", "size": "2B", "chat_template": False,
                        "infilling": False, "adds_bos": False})
    summary = json.loads((big / "summary.json").read_text())
    for entry in summary["per_problem"].values():
        entry["pass@1"] = 1.0  # a perfect bigger model: its interval touches 100%
    (big / "summary.json").write_text(json.dumps(summary))
    frame = runs_table([load_run(BASELINE), load_run(big)], seed=0)
    figure = size_figure(frame, [1], "core")
    axis = figure.axes[0]
    assert axis.get_ylim() == (0.0, 100.0)
    legend = [text.get_text() for text in axis.get_legend().get_texts()]
    assert legend == ["CodeGen pass@1: tiny-codegen (231K)",
                      "CodeGen mono pass@1: Salesforce/codegen-2B-mono (2.7B)"]
    _inside(figure, [axis.get_legend(), axis.title, *axis.get_yticklabels(), axis.xaxis.label])


def test_category_plot_labels_are_readable():
    import pandas as pd

    names = ["string manipulation and parsing", "numerical algorithms", "classes and object state"]
    categories = pd.DataFrame({"run-a": [0.0, 0.5, 1.0], "run-b": [0.25, 0.75, 0.9]}, index=names)
    figure = category_figure(categories, ["run-a: codegen-350M-mono (350M)", "run-b: codegen-2B-mono (2.7B)"])
    axis = figure.axes[0]
    assert axis.get_xlim() == (0.0, 100.0)
    labels = axis.get_yticklabels()
    assert sorted(label.get_text() for label in labels) == sorted(names)  # written out in full
    _inside(figure, [*labels, axis.get_legend(), axis.title])
    assert [t.get_text() for t in axis.get_legend().get_texts()] == ["run-a: codegen-350M-mono (350M)",
                                                                    "run-b: codegen-2B-mono (2.7B)"]


def test_runs_with_other_scoring_settings_are_grouped_apart(tmp_path):
    """The report groups by the same settings that `compare` requires to match: a run with another prompt
    format or time limit is never in the same group."""
    folders = []
    for name, change in (("base", {}), ("chat", {"prompt_format": "chat"}), ("slow", {"config.timeout": 99.0})):
        folder = tmp_path / name
        shutil.copytree(BASELINE, folder)
        summary = json.loads((folder / "summary.json").read_text())
        summary["timings"]["wall_seconds"] = len(folders)  # not a copy of another run
        for key, value in change.items():
            if key.startswith("config."):
                summary["config"][key.removeprefix("config.")] = value
            else:
                summary[key] = value
        (folder / "summary.json").write_text(json.dumps(summary))
        folders.append(load_run(folder))
    groups = set(runs_table(folders, seed=0)["group"])
    assert len(groups) == 3, groups
    assert any("prompt_format=chat" in group for group in groups) and any("timeout=99.0" in group for group in groups)


def test_the_family_is_the_recorded_one_and_the_name_decides_only_for_old_runs(tmp_path):
    """A run records the family its loader detected from the model's config and tokenizer; a report takes
    that, whatever the model's name says, and reads the name only where a run recorded no family."""
    tuned = _copy(tmp_path / "tuned", model="lab/my-finetune", model_type="llama",
                  family={"family": "codellama", "variant": "python", "size": "7b", "chat_template": False,
                          "infilling": True, "adds_bos": True})
    assert load_run(tuned).family() == ("Code Llama", "Python")
    old = _copy(tmp_path / "old", model="codellama/CodeLlama-7b-Instruct-hf", model_type="llama")
    summary = json.loads((old / "summary.json").read_text())
    del summary["model"]["family"]
    (old / "summary.json").write_text(json.dumps(summary))
    assert load_run(old).family() == ("Code Llama", "Instruct")
    assert load_run(BASELINE).family() == ("CodeGen", "-")
