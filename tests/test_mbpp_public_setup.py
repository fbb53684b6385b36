"""MBPP's public test (its first assert, run after each completion in feedback mode) needs the test's setup
code as the hidden tests do: problem 367's tree (``root = Node(1) ...``) and the sanitized set's
``test_imports`` (``import math``). Without it every program, the reference included, was told it raised a
NameError and was "repaired", and ``validate --references`` failed on the published data."""

from __future__ import annotations

import json

import pytest

from conftest import needs_shared_data, run_cli

CASES = [("mbpp", "mbpp.jsonl", "Mbpp/367"), ("mbpp-sanitized", "sanitized-mbpp.json", "Mbpp/300")]


@pytest.mark.parametrize(("suite", "data", "problem_id"), CASES)
def test_public_tests_pass_the_reference(suite, data, problem_id):
    from harness.feedback.checks import public_test_code, public_tests
    from harness.suites.registry import resolve_suite

    problem = next(p for p in resolve_suite(suite, str(needs_shared_data(data))).problems if p.id == problem_id)
    tests = public_tests(problem)
    assert tests
    exec(compile(problem.reference + "\n" + public_test_code(problem, tests), "<check>", "exec"), {})


@pytest.mark.parametrize(("suite", "data", "problem_id"), CASES)
def test_a_reference_run_with_feedback_repairs_nothing(tmp_path, suite, data, problem_id):
    out = run_cli("run", "--suite", suite, "--data", str(needs_shared_data(data)), "--model", "reference",
                  "--feedback", "errors", "--problems", problem_id, "--results-dir", str(tmp_path),
                  "--run-name", "r")
    assert out.returncode == 0, out.stderr[-2000:]
    repairs = json.loads((tmp_path / "r" / "summary.json").read_text())["feedback"]["repairs"]
    assert repairs["made"] == 0 and repairs["errors_by_type"] == {}, repairs
