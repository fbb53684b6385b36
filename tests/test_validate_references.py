"""``run-benchmark validate SUITE --references``: every reference runs in the sandbox, and the command ends
with its report (exit 0 when all pass, 1 naming each wrong reference or public test), for a built-in YAML
suite, a published suite read from its data file, and a user's own YAML folder."""

from __future__ import annotations

import re

from conftest import needs_shared_data, run_cli

CODE_PROBLEM = """id: sq
category: c
prompt: |
  def square(x):
      \"\"\"x times x.\"\"\"
entry_point: square
reference: "    return x * x\\n"
public_tests: ["assert candidate(3) == 9"]
test: |
  def check(candidate):
      assert candidate(2) == 4
"""
TURNS_PROBLEM = """id: t1
category: c
turns:
  - prompt: Set x to {a}.
    reference: x = {a}
  - prompt: Print x.
    reference: print(x)
tests:
  - inputs: {a: 1}
    expected: 1
"""


def references_run(stdout: str) -> tuple[int, int]:
    found = re.findall(r"^references: (\d+)/(\d+) conversations passed$", stdout, flags=re.M)
    assert len(found) == 1, stdout[-2000:]
    return int(found[0][0]), int(found[0][1])


def test_core_references_all_pass_and_are_counted():
    out = run_cli("validate", "core", "--references")
    assert out.returncode == 0 and "Traceback" not in out.stderr, out.stderr[-3000:]
    passed, total = references_run(out.stdout)
    assert passed == total >= 40 and out.stdout.splitlines()[-1] == "ok"


def test_humaneval_references_from_the_shared_data_all_pass():
    out = run_cli("validate", "humaneval", "--data", str(needs_shared_data("HumanEval.jsonl.gz")), "--references")
    assert out.returncode == 0 and "Traceback" not in out.stderr, out.stderr[-3000:]
    assert references_run(out.stdout) == (164, 164) and out.stdout.splitlines()[-1] == "ok"


def test_a_yaml_suite_reports_its_wrong_reference_and_wrong_public_test(tmp_path):
    good, bad = tmp_path / "good", tmp_path / "bad"
    for folder in (good, bad):
        folder.mkdir()
        (folder / "t1.yaml").write_text(TURNS_PROBLEM)
    (good / "sq.yaml").write_text(CODE_PROBLEM)
    (bad / "sq.yaml").write_text(CODE_PROBLEM.replace("== 9", "== 10"))
    (bad / "t2.yaml").write_text(TURNS_PROBLEM.replace("t1", "t2").replace("expected: 1", "expected: 2"))
    out = run_cli("validate", str(good), "--references")
    assert out.returncode == 0 and "Traceback" not in out.stderr, out.stderr[-3000:]
    assert references_run(out.stdout) == (2, 2) and out.stdout.splitlines()[-1] == "ok"
    out = run_cli("validate", str(bad), "--references")
    assert out.returncode == 1 and "Traceback" not in out.stderr, out.stderr[-3000:]
    assert references_run(out.stdout) == (2, 3)
    failures = [line for line in out.stdout.splitlines() if line.startswith("FAIL ")]
    assert len(failures) == 2, out.stdout
    assert any("problem t2: field 'reference'" in line for line in failures), failures
    assert any("problem sq: field 'public_tests'" in line for line in failures), failures
    assert out.stdout.splitlines()[-1] == "2 problem(s) found"
