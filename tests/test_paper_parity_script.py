"""benchmarks/perf/paper_parity.py end to end with the tiny models standing in for the real ones: every greedy
preset runs, and the table has a row per model, preset and metric with the published figure of the real model
(the measured figures are noise); the sampled CodeGen presets, which have no figure, say so."""

from __future__ import annotations

import subprocess
import sys

from conftest import ROOT, SHARED_DATA, needs_shared_data


def _parity(*args: str) -> list[list[str]]:
    needs_shared_data("mbpp.jsonl")
    result = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "perf" / "paper_parity.py"), "--tiny",
                             "--data-dir", str(SHARED_DATA), *args], capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    lines = result.stdout.splitlines()
    assert "Tiny models stood in" in result.stdout
    start = lines.index(next(line for line in lines if line.startswith("| model |")))
    return [[cell.strip() for cell in line.strip("|").split("|")] for line in lines[start + 2:] if line.startswith("|")]


def test_greedy_presets_run_end_to_end_and_the_table_has_the_papers_figures(tmp_path):
    rows = _parity("--out", str(tmp_path))
    published = {(row[0], row[1].split(" ")[0], row[2]): row[3] for row in rows}
    assert published == {
        ("codellama/CodeLlama-7b-hf", "codellama-humaneval-greedy", "pass@1"): "33.5",
        ("codellama/CodeLlama-7b-Python-hf", "codellama-humaneval-greedy", "pass@1"): "38.4",
        ("codellama/CodeLlama-7b-hf", "codellama-mbpp-greedy", "pass@1"): "41.4",
        ("codellama/CodeLlama-7b-Python-hf", "codellama-mbpp-greedy", "pass@1"): "47.6",
        ("codellama/CodeLlama-7b-hf", "codellama-infilling-single-line-psm", "pass@1"): "74.1",
        ("codellama/CodeLlama-7b-hf", "codellama-infilling-single-line-spm", "pass@1"): "83.3"}
    for row in rows:
        measured = float(row[4].split(" ")[0])
        assert row[5] == f"{measured - float(row[3]):+.1f}" and row[6].endswith(")")
        assert "limit=2" in row[7] and "max_new_tokens=8" in row[7]  # the stand-in's departures, recorded
    assert (tmp_path / "parity.md").read_text().count("\n| codellama/") == 6


def test_sampled_codegen_presets_say_the_figure_is_missing(tmp_path):
    rows = _parity("--out", str(tmp_path), "--sampled", "--model", "Salesforce/codegen-350M-mono")
    assert [(row[1].split(" ")[0], row[2]) for row in rows] == [
        ("codegen-humaneval", "pass@1"), ("codegen-humaneval", "pass@10"), ("codegen-humaneval", "pass@100"),
        ("codegen-mtpb", "pass@1")]
    assert all(row[3] == "not in the paper's text read" and row[5] == "" for row in rows)
    assert rows[1][4] == "not computed"  # pass@10 from one sample per problem
