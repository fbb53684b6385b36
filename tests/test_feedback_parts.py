"""Execution feedback's parts: reasoning taken out of replies, public tests derived from published data,
the feedback settings as user input, and the round-wise and budget-matched scores."""

from __future__ import annotations

import pytest

from conftest import needs_shared_data, refused_in_process
from harness.feedback.checks import check_job, public_tests
from harness.generation.feedback_format import split_reasoning
from harness.generation.prompt_formats import extract_code
from harness.suites.datasets.mbpp import first_assert
from harness.suites.problems import CODE, Problem
from harness.scoring.scores import Verdict, feedback_scores
from harness.execution.problem_limits import TimeLimits
from sandbox.pool import Limits


def test_reasoning_is_removed_before_the_code_is_extracted():
    reply = "<think>maybe ```python\nimport os\n``` no</think>\n```python\nx = 1\n```"
    answer, reasoning = split_reasoning(reply)
    assert extract_code(answer) == "x = 1" and "import os" in reasoning
    # Cut off by the budget while thinking: no answer at all, rather than the thought taken as code.
    assert split_reasoning("<think>x = 2 and then")[0] == ""
    assert split_reasoning("x = 3") == ("x = 3", "")


def code_problem(prompt: str, entry_point: str = "f", test: str = "def check(candidate):\n    pass\n",
                 **declared) -> Problem:
    """A code problem as a loader builds it: the prompt's examples derived as HumanEval's and MBPP's are."""
    return Problem(id="p", category="c", kind=CODE, source="s", prompt=prompt, entry_point=entry_point, test=test,
                   prompt_examples=() if entry_point else first_assert(test), examples_in_docstring=bool(entry_point),
                   **declared)


def test_public_tests_from_docstrings_and_first_asserts():
    prompt = ('def f(x):\n    """\n    >>> f(2)\n    4\n    f(3) ==> 9\n    f(y) -> something for any y\n'
              '    f(1) = true\n    """\n')
    assert public_tests(code_problem(prompt)) == ("assert candidate(2) == 4", "assert candidate(3) == 9")
    declared = code_problem(prompt, public_tests=("assert candidate(5) == 25",))
    assert public_tests(declared) == ("assert candidate(5) == 25",)
    mbpp = code_problem('"""Square."""\n', entry_point="", test="assert sq(2) == 4\nassert sq(3) == 9\n")
    assert public_tests(mbpp) == ("assert sq(2) == 4",)
    assert check_job(code_problem("def f(x):\n    pass\n"), "", (1,), TimeLimits(Limits())) is None


def test_every_derived_humaneval_example_passes_the_canonical_solution():
    from harness.execution.executor import Executor
    from harness.suites.registry import resolve_suite
    from sandbox.pool import SandboxPool

    suite = resolve_suite("humaneval", str(needs_shared_data("HumanEval.jsonl.gz")))
    shown = [p for p in suite.problems if public_tests(p)]
    assert len(shown) >= 120
    with SandboxPool(workers=2, preload=()) as pool:
        executions = Executor(pool, dedup=False).run([check_job(p, p.prompt + (p.reference or ""), (1,), TimeLimits(Limits()))
                                                      for p in shown])
    assert [(p.id, e.reason) for p, e in zip(shown, executions) if not e.passed] == []


PROBLEM = "- id: p\n  category: c\n  prompt: \"def f(x):\\n\"\n  entry_point: f\n  test: \"def check(candidate):\\n    pass\\n\"\n"


@pytest.mark.parametrize("suite_yaml,problem_extra,needle", [
    ("feedback: sometimes\n", "", "feedback"),
    ("max_repairs: -1\n", "", "max_repairs"),
    ("max_repairs: 1.5\n", "", "max_repairs"),
    ("", "  public_tests: assert candidate(1) == 1\n", "public_tests"),
    ("", "  public_tests: [\"print(1)\"]\n", "public_tests"),
    ("", "  public_tests: [\"assert candidate(1 ==\"]\n", "public_tests"),
])
def test_bad_feedback_fields_in_a_suite(suite_yaml, problem_extra, needle, tmp_path, capsys):
    folder = tmp_path / "suite"
    folder.mkdir()
    (folder / "suite.yaml").write_text("name: s\n" + suite_yaml)
    (folder / "p.yaml").write_text(PROBLEM + problem_extra)
    line = refused_in_process(["validate", str(folder)], capsys)
    assert needle in line and ("suite.yaml" in line or "p.yaml" in line), line


@pytest.mark.parametrize("flags,needle", [
    (["--feedback", "always"], "--feedback"), (["--max-repairs", "-1"], "max_repairs"),
    (["--max-repairs", "101"], "max_repairs"),
])
def test_bad_feedback_flags(flags, needle, tmp_path, capsys):
    line = refused_in_process(["run", "--model", "reference", "--results-dir", str(tmp_path / "r"), *flags], capsys)
    assert needle in line
    assert not (tmp_path / "r").exists()


def record(round0: bool, round1: bool, calls: list[int], tokens: list[int]) -> dict:
    """A one-turn sample line: its attempts generated ``tokens`` (one entry per attempt)."""
    attempts = [{"round": r, "new_tokens": t, "error_type": "NameError" if r + 1 < len(tokens) else None,
                 "check": "error" if r + 1 < len(tokens) else "ran"} for r, t in enumerate(tokens)]
    return {"feedback": {"rounds": [{"passed": round0, "status": "x"}, {"passed": round1, "status": "x"}],
                         "calls_by_round": calls, "attempts": [attempts]}}


def test_round_scores_and_the_budget_matched_estimate():
    """Four samples of one task; two pass at round 0, one more after a repair that the last two needed.
    By round 1 the samples made 6 calls where plain sampling makes 4: 1.5 times, so pass@1 with repair
    faces plain pass@2 of the round-0 samples (pass@2 with repair: plain pass@3). They generated 140 tokens
    where plain sampling generated 40 (the repairs were long): 3.5 times, so pass@1 with repair faces
    plain pass@4, and pass@2 plain pass@7, which n=4 cannot estimate."""
    records = [record(True, True, [1, 1], [10]), record(True, True, [1, 1], [10]),
               record(False, True, [1, 2], [10, 50]), record(False, False, [1, 2], [10, 50])]
    verdicts = [Verdict("p", "c", 0, i, r["feedback"]["rounds"][1]["passed"], "x", None, 1) for i, r in
                enumerate(records)]
    scores = feedback_scores(verdicts, records, [1, 2], 4, 1)
    round0, round1 = scores["rounds"]
    assert round0["pass@1"] == 0.5 and round1["pass@1"] == 0.75
    assert round1["budget_matched"]["calls_per_plain_sample"] == 1.5
    # plain pass@ceil(1.5) = pass@2 and pass@ceil(3) = pass@3 of (n=4, c=2)
    assert round1["budget_matched"]["pass@1"] == pytest.approx(1 - (2 * 1) / (4 * 3))
    assert round1["budget_matched"]["pass@2"] == 1.0
    assert round0["budget_matched"]["pass@1"] == 0.5
    tokens = round1["tokens_matched"]
    assert tokens["tokens_per_plain_sample"] == 3.5
    assert tokens["pass@1"] == 1.0 and tokens["pass@2"] is None  # plain pass@4 of (n=4, c=2); pass@7
    assert round0["tokens_matched"] == {"pass@1": 0.5, "pass@2": pytest.approx(1 - 1 / 6),
                                        "tokens_per_plain_sample": 1.0}
    assert scores["repairs"]["made"] == 2 and scores["repairs"]["errors_by_type"] == {"NameError": 2}
    assert scores["repairs"]["fixed"] == 1 and scores["repairs"]["broke"] == 0
