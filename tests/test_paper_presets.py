"""The papers' settings as presets: every preset applies, lists its source and is checkable against the file;
flags override a preset and are recorded as deviations; ``report`` and the run browser put the published figure
beside a preset run of a model the preset knows, with the difference and the tolerance verdict."""

from __future__ import annotations

import json
import shutil

import pytest
import yaml

from conftest import needs_shared_data, refused_in_process, run_cli
from harness.backends.huggingface.tiny_models import tiny_model_path
from harness.presets.apply import config_with_preset
from harness.presets.catalog import PRESETS_FILE, model_key, presets


def test_every_preset_applies_exactly_and_names_its_source(capsys):
    from harness.cli import main

    raw = yaml.safe_load(PRESETS_FILE.read_text(encoding="utf-8"))["presets"]
    assert {"codellama-humaneval-greedy", "codellama-humaneval-sampled", "codellama-mbpp-greedy",
            "codellama-mbpp-sampled", "codellama-infilling-single-line-spm", "codegen-humaneval",
            "codegen-mtpb"} <= set(presets())
    for name, preset in presets().items():
        config = config_with_preset({}, {"preset": name, "model": "tiny-llama"}, "test")
        assert config.preset == name and config.preset_deviations == {}
        assert all(getattr(config, option) == value for option, value in preset.settings.items())
        assert preset.settings == raw[name]["settings"] and preset.source and preset.tolerance_why
        assert preset.published or preset.missing  # a preset without figures says why
    assert main(["list", "--presets"]) == 0
    listed = capsys.readouterr().out
    assert all(f"{name}:" in listed for name in presets()) and "Table 2 (Section 3.1.1)" in listed
    assert "arXiv:2308.12950v3" in listed and "arXiv:2203.13474" in listed


def test_published_figures_match_the_papers_tables():
    """Spot checks against the papers (Code Llama Table 2 and Table 14), so an edit of the file is noticed."""
    known = presets()
    assert known["codellama-humaneval-greedy"].figures_for("codellama/CodeLlama-7b-hf") == {"pass@1": 33.5}
    assert known["codellama-humaneval-greedy"].figures_for("/w/CodeLlama-7b-Python-hf") == {"pass@1": 38.4}
    assert known["codellama-mbpp-sampled"].figures_for("codellama-13b") == {"pass@10": 71.7, "pass@100": 87.1}
    assert known["codellama-infilling-random-span-spm"].figures_for("CodeLlama-7b-hf") == {"pass@1": 39.0}
    assert known["codellama-humaneval-greedy"].figures_for("tiny-llama") == {}
    assert model_key("Salesforce/codegen-350M-mono") == "codegen-350m-mono"
    assert model_key("codellama/CodeLlama-34b-Instruct-hf") == "codellama-34b-instruct"


def test_an_unknown_preset_is_one_line(capsys):
    line = refused_in_process(["run", "--preset", "codellama-humaneval-greedyy", "--model", "tiny-llama"], capsys)
    assert "unknown preset 'codellama-humaneval-greedyy'" in line and "codellama-humaneval-greedy" in line


@pytest.fixture(scope="module")
def preset_run(tmp_path_factory):
    """A greedy HumanEval preset run of the tiny Llama under a known model name (its folder is called
    CodeLlama-7b-Python-hf), with two flags that depart from the preset."""
    data = str(needs_shared_data("HumanEval.jsonl.gz"))
    root = tmp_path_factory.mktemp("preset")
    model = root / "CodeLlama-7b-Python-hf"
    shutil.copytree(tiny_model_path("tiny-llama"), model)
    result = run_cli("run", "--preset", "codellama-humaneval-greedy", "--model", str(model), "--data", data,
                     "--limit", "3", "--max-new-tokens", "8", "--results-dir", str(root), "--run-name", "cl7bpy")
    assert result.returncode == 0, result.stderr[-2000:]
    return root / "cl7bpy"


def test_a_preset_run_records_the_preset_and_its_deviations(preset_run):
    config = yaml.safe_load((preset_run / "config.yaml").read_text())
    assert config["preset"] == "codellama-humaneval-greedy"
    assert config["suite"] == "humaneval" and config["temperature"] == 0 and config["n"] == 1
    assert config["preset_deviations"] == {"max_new_tokens": {"preset": None, "run": 8},
                                           "limit": {"preset": None, "run": 3}}
    assert json.loads((preset_run / "summary.json").read_text())["config"]["preset_deviations"] == \
        config["preset_deviations"]


def test_report_and_view_show_the_paper_column(preset_run, tmp_path):
    result = run_cli("report", str(preset_run), "--out", str(tmp_path / "report"))
    assert result.returncode == 0, result.stderr[-2000:]
    summary = json.loads((preset_run / "summary.json").read_text())
    measured = 100 * summary["overall"]["pass@1"]
    md = (tmp_path / "report" / "report.md").read_text()
    row = next(line for line in md.splitlines() if line.startswith("| cl7bpy | codellama-humaneval-greedy"))
    cells = [cell.strip() for cell in row.strip("|").split("|")]
    assert cells[3:6] == ["codellama-7b-python", "pass@1", "38.4"]
    assert cells[6].startswith(f"{measured:.1f} [") and cells[7] == f"{measured - 38.4:+.1f} points"
    assert cells[8] == ("yes" if abs(measured - 38.4) <= 2.5 else "NO") + " (±2.5)"
    assert "max_new_tokens 8 (preset None)" in cells[9] and "limit 3 (preset None)" in cells[9]
    assert "Table 2 (Section 3.1.1)" in cells[2]
    assert "38.4" in (tmp_path / "report" / "report.html").read_text()
    view = run_cli("view", str(preset_run), "--out", str(tmp_path / "view.html"))
    assert view.returncode == 0, view.stderr[-2000:]
    from harness.reports.finished_runs import load_run
    from harness.reports.view_data import build_view

    index, _ = build_view([load_run(preset_run)], ["cl7bpy"])
    assert any("published 38.4" in line and "deviations: " in line for line in index["runs"][0]["paper"])
