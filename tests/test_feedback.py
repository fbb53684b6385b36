"""Execution feedback end to end: a scripted model behind a real OpenAI-compatible HTTP server on 127.0.0.1
answers wrong first and right (or worse) after feedback; the programs run in the real sandbox."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import JsonEndpoint, run_cli

SUITE = """\
- id: fb/double
  category: arith
  turns:
    - prompt: Assign {a} to a variable named "x".
      reference: x = {a}
    - prompt: Print x times two.
      reference: print(x * 2)
  tests:
    - inputs: {a: 3}
      expected: 6
- id: fb/square
  category: arith
  prompt: |
    def square(n):
        \"\"\"Square n.
        >>> square(3)
        9
        \"\"\"
  entry_point: square
  reference: "    return n * n\\n"
  test: |
    def check(candidate):
        assert candidate(4) == 16
        assert candidate(5) == 25
"""

# (what the request asks for) -> (first answer, answer after feedback)
FIXES = {
    "Assign 3": ("x = undefined_name", "x = 3"),
    "Print x": ("print(x * 2)", "print(x * 2)"),
    "def square": ("    return n + n\n", "    return n * n\n"),
}
# A model whose "repair" breaks a program that scored: the turn prints the right value, then raises (the
# mtpb scorer counts what was printed; the run-only check sees the exception).
BREAKS = {
    "Assign 3": ("x = 3", "x = 3"),
    "Print x": ("print(x * 2)\nraise ValueError('late')", "print(x * 3)"),
}


class ScriptedServer(JsonEndpoint):
    """``/v1/completions`` and ``/v1/chat/completions`` answered from a script: the first answer, or the
    answer after feedback when the request carries feedback (the base format's comment block, the chat
    format's feedback message)."""

    def __init__(self, script: dict[str, tuple[str, str]], think: bool = False, tokens: tuple[int, int] = (3, 3)):
        self.script = script
        self.think = think
        self.tokens = tokens  # completion tokens the usage reports for a first answer and for a repair
        super().__init__(self.reply)

    def reply(self, path: str, body: dict) -> tuple[int, dict]:
        chat = path == "/v1/chat/completions"
        answer, repair = self.answer(body, chat)
        if chat:
            text = f"```python\n{answer.rstrip()}\n```"
            if self.think:
                text = "<think>The user wants code. Let me think about it.</think>\n" + text
            choice = {"index": 0, "message": {"role": "assistant", "content": text}}
        else:
            choice = {"index": 0, "text": answer}
        return 200, {"choices": [choice], "usage": {
            "prompt_tokens": 5, "completion_tokens": self.tokens[repair],
            **({"completion_tokens_details": {"reasoning_tokens": 11}} if chat and self.think else {})}}

    def answer(self, body: dict, chat: bool) -> tuple[str, bool]:
        if chat:
            asked = next(m["content"] for m in body["messages"] if m["role"] == "user" and
                         any(key in m["content"] for key in self.script) and m is self._turn_message(body))
            repair = body["messages"][-1]["content"].startswith(("Running the program", "Your code failed"))
        else:
            tail = body["prompt"].rsplit("\n\n", 1)[-1]
            asked = body["prompt"].rstrip("\n").rsplit("\n", 1)[-1] if "def square" not in body["prompt"] else "def square"
            repair = "# Feedback:" in tail or ("def square" in asked and "# Feedback:" in body["prompt"])
        key = next(key for key in self.script if key in asked)
        return self.script[key][1 if repair else 0], repair

    @staticmethod
    def _turn_message(body: dict) -> dict:
        """The user message that asked for the turn being answered (the last one not carrying feedback)."""
        return next(m for m in reversed(body["messages"]) if m["role"] == "user" and
                    not m["content"].startswith(("Running the program", "Your code failed")))


@pytest.fixture
def suite(tmp_path: Path) -> Path:
    folder = tmp_path / "suite"
    folder.mkdir()
    (folder / "suite.yaml").write_text("name: fb\nscorer: strict\nsandbox_preload: []\n")
    (folder / "problems.yaml").write_text(SUITE)
    return folder


def run(server: ScriptedServer, suite: Path, out: Path, *extra: str) -> dict:
    result = run_cli("run", "--suite", str(suite), "--backend", "openai", "--base-url", server.url, "--model", "scripted",
                     "--temperature", "0", "--results-dir", str(out), "--run-name", "r", "--no-verdict-cache", *extra)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads((out / "r" / "summary.json").read_text())


def samples(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "r" / "samples.jsonl").read_text().splitlines()]


@pytest.mark.parametrize("prompt_format", ["base", "chat"])
def test_wrong_then_right_after_feedback(suite, tmp_path, prompt_format):
    with ScriptedServer(FIXES, think=prompt_format == "chat") as server:
        summary = run(server, suite, tmp_path, "--feedback", "tests", "--prompt-format", prompt_format)
    rounds = summary["feedback"]["rounds"]
    assert [r["pass@1"] for r in rounds] == [0.0, 1.0]
    assert summary["overall"]["pass@1"] == 1.0
    repairs = summary["feedback"]["repairs"]
    assert repairs["made"] == 2 and repairs["fixed"] == 2 and repairs["broke"] == 0
    assert repairs["errors_by_type"] == {"NameError": 1, "failed test": 1}
    # 3 calls for 2 turns, 2 calls for one prompt: (1.5 + 2) / 2 times a plain sample's. The budget-matched
    # figure would be pass@2 of round 0's samples, which n=1 cannot estimate.
    assert rounds[1]["budget_matched"]["calls_per_plain_sample"] == 1.75
    assert rounds[1]["budget_matched"]["pass@1"] is None
    lines = {line["task_id"]: line for line in samples(tmp_path)}
    turn = lines["fb/double"]["feedback"]["attempts"][0]
    assert [a["error_type"] for a in turn] == ["NameError", None]
    assert "NameError: name 'undefined_name' is not defined" in turn[0]["feedback"]
    square = lines["fb/square"]["feedback"]["attempts"][0]
    # The public test (the docstring's example) with what the program returned; never the hidden tests.
    assert square[0]["feedback"] == "a test failed: assert candidate(3) == 9: got 6"
    assert "candidate(4)" not in json.dumps(server.bodies) and "(5)" not in json.dumps(server.bodies)
    assert lines["fb/square"]["program"].endswith("return n * n\n")
    if prompt_format == "chat":
        assert all(t["reasoning_tokens"] == 11 for line in lines.values() for t in line["turns"])
        repair = next(b for b in server.bodies if b["messages"][-1]["content"].startswith("Your code failed"))
        assert "got 6" in repair["messages"][-1]["content"]
        assert repair["messages"][-2]["role"] == "assistant" and "n + n" in repair["messages"][-2]["content"]
    else:
        repair = next(b for b in server.bodies if "# Feedback:" in b["prompt"] and "undefined_name" in b["prompt"])
        assert repair["prompt"].endswith("x = undefined_name\n\n# Feedback: running the program so far failed at "
                                         "the step above:\n# NameError: name 'undefined_name' is not defined (line 1 of the step's code)\n"
                                         "# Write that step again.\n# Assign 3 to a variable named \"x\".\n")


LINES = """\
- id: fb/lines
  category: arith
  turns:
    - prompt: Assign {a} to a variable named "x".
    - prompt: Print x times two.
    - prompt: Print x plus one.
  tests:
    - inputs: {a: 3}
      expected: 4
"""
# The second turn raises on its third line, the third does not compile on its second line: each error is
# named by the line in that turn's own code, not in the program so far.
LINE_ERRORS = {
    "Assign 3": ("x = 3\nw = [1,\n     2]", "x = 3"),
    "Print x times": ("y = x * 2\ny = y + 0\nprint(y + undefined_y)", "print(x * 2)"),
    "Print x plus": ("z = x + 1\nprint(z) +* 2", "print(x + 1)"),
}


@pytest.mark.parametrize("prompt_format", ["base", "chat"])
def test_feedback_names_the_line_of_the_turn(suite, tmp_path, prompt_format):
    (suite / "problems.yaml").write_text(LINES)
    with ScriptedServer(LINE_ERRORS) as server:
        summary = run(server, suite, tmp_path, "--feedback", "errors", "--prompt-format", prompt_format)
    assert summary["overall"]["pass@1"] == 1.0
    attempts = samples(tmp_path)[0]["feedback"]["attempts"]
    assert [turn[0]["feedback"] for turn in attempts] == [
        None, "NameError: name 'undefined_y' is not defined (line 3 of the step's code)",
        "SyntaxError: invalid syntax (line 2 of the step's code)"]
    asked = json.dumps(server.bodies)
    assert "line 3 of the step's code" in asked and "line 2 of the step's code" in asked
    assert "<program>" not in asked  # the accumulated program's numbering is not shown


def test_hidden_tests_never_reach_the_model(suite, tmp_path):
    """The hidden tests' failure is worded for the user (its assert and what the program returned, in the
    sample line), and the model is only ever shown the public tests' (issue 31, item 11)."""
    never_fixed = {"def square": ("    return n + n\n", "    return n + 1\n")}
    (suite / "problems.yaml").write_text("- id: fb/square" + SUITE.split("- id: fb/square")[1])
    with ScriptedServer(never_fixed) as server:
        run(server, suite, tmp_path, "--feedback", "tests", "--max-repairs", "2")
    line = samples(tmp_path)[0]
    assert line["reason"] == "AssertionError: assert candidate(4) == 16: got 5", line["reason"]
    assert [r["reason"] for r in line["feedback"]["rounds"]][:2] == [
        "AssertionError: assert candidate(4) == 16: got 8", "AssertionError: assert candidate(4) == 16: got 5"]
    asked = json.dumps(server.bodies)
    assert "a test failed: assert candidate(3) == 9: got 4" in asked  # the public test, fed back
    assert "candidate(4)" not in asked and "== 16" not in asked and "(5)" not in asked and "== 25" not in asked


def test_errors_mode_feeds_back_exceptions_only(suite, tmp_path):
    with ScriptedServer(FIXES) as server:
        summary = run(server, suite, tmp_path, "--feedback", "errors")
    lines = {line["task_id"]: line for line in samples(tmp_path)}
    assert lines["fb/double"]["passed"] and not lines["fb/square"]["passed"]
    assert lines["fb/square"]["feedback"]["attempts"][0][0]["feedback"] is None  # a failed test: not shown
    assert summary["feedback"]["repairs"]["made"] == 1


def test_a_repair_that_breaks_working_code_is_counted(suite, tmp_path):
    (suite / "suite.yaml").write_text("name: fb\nscorer: mtpb\nsandbox_preload: []\nfeedback: errors\n"
                                      "max_repairs: 1\n")
    (suite / "problems.yaml").write_text(SUITE.split("- id: fb/square")[0])
    with ScriptedServer(BREAKS) as server:
        summary = run(server, suite, tmp_path)  # feedback from the suite's YAML
    assert summary["config"]["feedback"] == "errors"
    assert [r["pass@1"] for r in summary["feedback"]["rounds"]] == [1.0, 0.0]
    repairs = summary["feedback"]["repairs"]
    assert repairs["broke"] == 1 and repairs["fixed"] == 0 and repairs["errors_by_type"] == {"ValueError": 1}
    # The report shows the rounds: a table, and pass@k drawn against the round.
    report = run_cli("report", str(tmp_path / "r"), "--out", str(tmp_path / "report"))
    assert report.returncode == 0, report.stderr[-2000:]
    markdown = (tmp_path / "report" / "report.md").read_text()
    assert "| r | errors | 0 | 100.0% |" in markdown and "| r | errors | 1 | 0.0% |" in markdown
    assert (tmp_path / "report" / "pass_at_k_vs_repair_round.png").stat().st_size > 0


def test_feedback_none_sends_no_checks(suite, tmp_path):
    with ScriptedServer(FIXES) as server:
        summary = run(server, suite, tmp_path)
    assert "feedback" not in summary and summary["overall"]["pass@1"] == 0.0
    assert all("feedback" not in line for line in samples(tmp_path))
    assert len(server.bodies) == 3  # two turns and one code prompt, no repairs


def test_resume_refuses_a_run_whose_public_tests_changed(suite, tmp_path):
    """The public tests decide what the model is shown, so they are part of the suite's checksum."""
    problems = suite / "problems.yaml"
    problems.write_text(SUITE.replace("  entry_point: square\n",
                                      "  entry_point: square\n  public_tests: [\"assert candidate(3) == 9\"]\n"))
    args = ("run", "--suite", str(suite), "--model", "reference", "--feedback", "tests", "--results-dir",
            str(tmp_path), "--run-name", "r", "--workers", "1", "--no-verdict-cache")
    first = run_cli(*args)
    assert first.returncode == 0, first.stderr[-2000:]
    written = (tmp_path / "r" / "samples.jsonl").read_bytes()
    problems.write_text(problems.read_text().replace("candidate(3) == 9", "candidate(2) == 4"))
    resumed = run_cli(*args, "--resume")
    assert resumed.returncode == 2 and "suite's content" in resumed.stderr and "public test" in resumed.stderr
    assert "Traceback" not in resumed.stderr and len(resumed.stderr.strip().splitlines()) == 1
    assert (tmp_path / "r" / "samples.jsonl").read_bytes() == written


def test_a_suite_without_public_tests_keeps_its_checksum(suite):
    """Declared public tests add to the checksum only where a problem has them (older runs still resume)."""
    import dataclasses
    import hashlib

    from harness.runs.folder.fingerprints import run_inputs
    from harness.suites.registry import resolve_suite

    loaded = resolve_suite(str(suite), None)
    problems = list(loaded.problems)
    content = {"scorer": loaded.scorer, "program_prefix": loaded.program_prefix, "preload": list(loaded.preload),
               "problems": [{k: v for k, v in dataclasses.asdict(p).items()
                             if k not in ("source", "defects", "description", "public_tests", "prompt_examples",
                                          "examples_in_docstring", "tiers")}
                            for p in problems]}
    before = hashlib.sha256(json.dumps(content, sort_keys=True, default=repr).encode()).hexdigest()
    assert run_inputs(loaded, problems)["suite_sha256"] == before
    declared = [dataclasses.replace(p, public_tests=("assert candidate(3) == 9",)) for p in problems]
    assert run_inputs(loaded, declared)["suite_sha256"] != before


RIGHT = {"Assign 3": ("x = 3", "x = 3"), "Print x": ("print(x * 2)", "print(x * 2)"),
         "def square": ("    return n * n\n", "    return n * n\n")}


@pytest.mark.parametrize("budget,passing", [(10, 0.0), (11, 1.0)])
def test_reasoning_has_its_own_budget(suite, tmp_path, budget, passing):
    """The server reasons 11 tokens before every (right) answer: the request's budget is the answer's plus
    the reasoning's, and a reply that reasons past its budget counts as no answer."""
    with ScriptedServer(RIGHT, think=True) as server:
        summary = run(server, suite, tmp_path, "--prompt-format", "chat", "--max-new-tokens", "40",
                      "--max-reasoning-tokens", str(budget))
    assert [body["max_tokens"] for body in server.bodies] == [40 + budget] * 3
    assert summary["overall"]["pass@1"] == passing
    assert summary["config"]["max_reasoning_tokens"] == budget
    over = budget < 11
    assert summary["timings"]["reasoning_tokens"] == 33 and summary["timings"]["reasoning_over_budget"] == 3 * over
    turns = [t for line in samples(tmp_path) for t in line["turns"]]
    assert all(t.get("reasoning_over_budget", False) == over and (t["completion"] == "") == over for t in turns)


def test_bad_reasoning_budget_is_refused(suite, tmp_path):
    result = run_cli("run", "--suite", str(suite), "--model", "reference", "--max-reasoning-tokens", "0",
                     "--results-dir", str(tmp_path), "--run-name", "r")
    assert result.returncode == 2 and "max_reasoning_tokens" in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "r").exists()


def test_budget_matched_by_calls_and_by_tokens(suite, tmp_path):
    """First answers cost 10 tokens, repairs 30. By round 1, fb/double made 3 calls and 50 tokens where a
    plain sample makes 2 and 20 (x1.5, x2.5); fb/square 2 calls and 40 tokens where plain makes 1 and 10
    (x2, x4). With n=4, pass@2 matched by calls is plain pass@3 and pass@4; matched by tokens, plain pass@5
    for fb/double, which four samples cannot estimate."""
    with ScriptedServer(FIXES, tokens=(10, 30)) as server:
        summary = run(server, suite, tmp_path, "--feedback", "tests", "--num-samples", "4", "--k", "1,2")
    round0, round1 = summary["feedback"]["rounds"]
    assert round1["pass@1"] == 1.0 and round0["pass@1"] == 0.0
    assert round1["budget_matched"] == {"pass@1": 0.0, "pass@2": 0.0, "calls_per_plain_sample": 1.75}
    assert round1["tokens_matched"] == {"pass@1": 0.0, "pass@2": None, "tokens_per_plain_sample": 3.25}
    assert round0["tokens_matched"]["tokens_per_plain_sample"] == 1.0
    report = run_cli("report", str(tmp_path / "r"), "--out", str(tmp_path / "report"))
    assert report.returncode == 0, report.stderr[-2000:]
    assert "tokens-matched pass@1" in (tmp_path / "report" / "report.md").read_text()
