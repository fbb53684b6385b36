"""Numbers that must never be silently wrong: the regression gate's exit status with its output closed, a
backend that answers fewer samples than asked, request counts per endpoint, cached reference times, public
tests written over two lines, settings that do nothing, and the content of the problems a subset compares.
Real runs (the reference backend, a plug-in, a fake endpoint on 127.0.0.1) on a two-problem suite."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from conftest import ROOT, JsonEndpoint, run_cli

SUITE = """\
- id: mini/double
  category: arith
  turns:
    - prompt: Assign {a} to a variable named "x".
      reference: x = {a}
    - prompt: Print x times two.
      reference: print(x * 2)
  tests:
    - inputs: {a: 3}
      expected: 6
- id: mini/square
  category: arith
  prompt: |
    def square(n):
        \"\"\"Square n.\"\"\"
  entry_point: square
  reference: "    return n * n\\n"
  public_tests:
    - "assert candidate(3) == \\\\\\n    9"
    - "assert candidate(2) \\\\\\n    == 4, 'two'"
  test: |
    def check(candidate):
        assert candidate(4) == 16
        assert candidate(5) == 25
"""


def make_suite(folder: Path, text: str = SUITE) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "suite.yaml").write_text("name: mini\nscorer: strict\nsandbox_preload: []\n")
    (folder / "problems.yaml").write_text(text)
    return folder


def reference_run(suite: Path, out: Path, name: str, *flags: str) -> dict:
    result = run_cli("-q", "run", "--suite", str(suite), "--model", "reference", "--results-dir", str(out),
                     "--run-name", name, "--no-verdict-cache", *flags)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads((out / name / "summary.json").read_text())


def one_error(result: subprocess.CompletedProcess, code: int) -> str:
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert result.returncode == code and len(errors) == 1 and "Traceback" not in result.stderr, result.stderr[-3000:]
    return errors[0]


@pytest.fixture(scope="module")
def suite(tmp_path_factory) -> Path:
    return make_suite(tmp_path_factory.mktemp("suite") / "mini")


@pytest.fixture(scope="module")
def plain(suite, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("runs")
    reference_run(suite, out, "plain")
    return out / "plain"


def test_compare_exits_1_on_a_regression_even_when_its_output_is_closed(plain):
    """``compare ... | head -1`` under pipefail: the reader gone is no pass of the gate."""
    worse = ROOT / "results" / "baselines" / "core-tiny-codegen"
    better = plain.parent / "core-reference"
    reference_run(Path("core"), plain.parent, "core-reference")
    read, write = os.pipe()
    os.close(read)  # the reader has gone before the gate writes
    try:
        closed = subprocess.run([sys.executable, "-m", "harness.cli", "compare", "--baseline", str(better),
                                 "--candidate", str(worse), "--allow-different-settings"], stdout=write,
                                stderr=subprocess.PIPE, text=True, cwd=ROOT,
                                env={**os.environ, "PYTHONPATH": str(ROOT)})
    finally:
        os.close(write)
    assert closed.returncode == 1 and "Traceback" not in closed.stderr, closed.stderr


SHORT_PLUGIN = '''
from harness.backends.base import GenerationResult
from harness.backends.spec import BackendSpec


class ShortBackend:
    """Answers with the reference solutions, but drops the last sample of every batch."""

    name = "short"
    requires_reference = True
    supports_infilling = True
    supports_chat = prefers_chat = False

    def identity(self):
        return {"backend": "short", "model": "short"}

    def generate(self, requests, sampling):
        return [GenerationResult(text=r.reference) for r in requests][:-1]


BACKEND = BackendSpec("short", "drops a sample", lambda config, device: ShortBackend())
'''


def test_a_backend_answering_fewer_samples_than_asked_is_an_error_not_failures(suite, tmp_path):
    plugins = tmp_path / "plugins"
    (plugins / "short_backend-1.0.dist-info").mkdir(parents=True)
    (plugins / "short_backend.py").write_text(SHORT_PLUGIN)
    (plugins / "short_backend-1.0.dist-info" / "METADATA").write_text("Metadata-Version: 2.1\nName: short-backend\n"
                                                                     "Version: 1.0\n")
    (plugins / "short_backend-1.0.dist-info" / "entry_points.txt").write_text(
        "[harness.backends]\nshort = short_backend:BACKEND\n")
    result = run_cli("-q", "run", "--suite", str(suite), "--backend", "short", "--n", "2", "--results-dir",
                     str(tmp_path), "--run-name", "short", env_extra={"PYTHONPATH": f"{ROOT}{os.pathsep}{plugins}"})
    line = one_error(result, 1)
    answered = re.search(r"backend short answered (\d+) result\(s\) for (\d+) request\(s\)", line)
    assert answered and int(answered[1]) == int(answered[2]) - 1, line
    assert not (tmp_path / "short" / "summary.json").exists()


def canned(path: str, body: dict):
    asked = json.dumps(body)  # the base format's prompt holds the turns before: the last one asked comes first
    text = "print(x * 2)" if "Print x" in asked else "x = 3" if "Assign" in asked else "    return n * n\n"
    return 200, {"choices": [{"index": 0, "text": text}], "usage": {"prompt_tokens": 5, "completion_tokens": 3}}


def test_the_same_endpoint_given_twice_counts_its_requests_once(suite, tmp_path):
    with JsonEndpoint(canned) as server:
        result = run_cli("-q", "run", "--suite", str(suite), "--backend", "openai", "--model", "m", "--base-url",
                         server.url, "--base-url", server.url + "/", "--results-dir", str(tmp_path), "--run-name",
                         "twice", "--no-verdict-cache")
        assert result.returncode == 0, result.stderr[-3000:]
        sent = len(server.bodies)
    summary = json.loads((tmp_path / "twice" / "summary.json").read_text())
    assert summary["timings"]["endpoints"] == {server.url: {"requests": sent, "failures": 0, "set_aside": 0}}
    assert summary["overall"]["pass@1"] == 1.0


@pytest.mark.parametrize("cached", [1e300, -1.0, 1e9])
def test_an_implausible_cached_reference_time_is_measured_again(suite, tmp_path, cached):
    cache = tmp_path / "cache"
    env = {"HARNESS_CACHE": str(cache)}
    first = run_cli("-q", "run", "--suite", str(suite), "--model", "reference", "--results-dir", str(tmp_path),
                    "--run-name", "first", "--no-verdict-cache", env_extra=env)
    assert first.returncode == 0, first.stderr[-3000:]
    [times] = (cache / "reference-times").glob("*.json")
    times.write_text(json.dumps({key: cached for key in json.loads(times.read_text())}))
    again = run_cli("-q", "run", "--suite", str(suite), "--model", "reference", "--results-dir", str(tmp_path),
                    "--run-name", "again", "--no-verdict-cache", env_extra=env)
    assert again.returncode == 0, again.stderr[-3000:]
    summary = json.loads((tmp_path / "again" / "summary.json").read_text())
    assert summary["overall"]["pass@1"] == 1.0
    assert summary["limits"]["problems"]["mini/square"]["cpu_seconds"] <= 86400
    assert json.loads(times.read_text())["mini/square"] < 1000  # measured again, and the cache repaired


def test_public_tests_over_two_lines_run_as_validate_reads_them(suite, tmp_path):
    """The reference passes its public tests: no sample is told it has a SyntaxError, nothing is repaired."""
    assert run_cli("validate", str(suite)).returncode == 0
    summary = reference_run(suite, tmp_path, "fb", "--feedback", "tests")
    samples = [json.loads(line) for line in (tmp_path / "fb" / "samples.jsonl").read_text().splitlines()]
    square = next(s for s in samples if s["task_id"] == "mini/square")
    assert square["feedback"]["attempts"][0][0]["feedback"] is None, square["feedback"]
    assert summary["feedback"]["repairs"]["made"] == 0 and summary["overall"]["pass@1"] == 1.0


def test_settings_that_do_nothing_are_not_recorded(suite, plain, tmp_path):
    """``--max-repairs`` without feedback does nothing: not recorded, so the run compares with a plain one;
    ``--feedback none`` records what no --feedback does, so compare and --resume take either spelling."""
    summary = reference_run(suite, tmp_path, "repairs", "--max-repairs", "3")
    config = yaml.safe_load((tmp_path / "repairs" / "config.yaml").read_text())
    assert config["max_repairs"] is None and summary["config"]["max_repairs"] is None
    none = reference_run(suite, tmp_path, "none", "--feedback", "none")
    assert none["config"]["feedback"] is None and none["config"]["max_repairs"] is None
    for run in ("repairs", "none"):
        result = run_cli("compare", "--baseline", str(plain), "--candidate", str(tmp_path / run))
        assert result.returncode == 0, result.stderr
    (tmp_path / "none" / "summary.json").unlink()  # as if interrupted before the merge
    resumed = run_cli("-q", "run", "--suite", str(suite), "--model", "reference", "--results-dir", str(tmp_path),
                      "--run-name", "none", "--resume", "--no-verdict-cache")
    assert resumed.returncode == 0, resumed.stderr[-3000:]


def test_a_reasoning_budget_with_the_base_format_is_refused(suite, tmp_path):
    result = run_cli("-q", "run", "--suite", str(suite), "--model", "reference", "--prompt-format", "base",
                     "--max-reasoning-tokens", "100", "--results-dir", str(tmp_path), "--run-name", "r")
    assert "max_reasoning_tokens" in one_error(result, 2)
    assert not (tmp_path / "r").exists()


def test_compare_of_a_subset_checks_the_shared_problems_content(suite, plain, tmp_path):
    edited = make_suite(tmp_path / "edited-suite", SUITE.replace("expected: 6", "expected: 7"))
    reference_run(edited, tmp_path, "edited", "--problems", "mini/double")
    result = run_cli("compare", "--baseline", str(plain), "--candidate", str(tmp_path / "edited"),
                     "--allow-subset")
    line = one_error(result, 2)
    assert "mini/double" in line and "content" in line, line
    same = make_suite(tmp_path / "same-suite")
    reference_run(same, tmp_path, "same", "--problems", "mini/double")
    assert run_cli("compare", "--baseline", str(plain), "--candidate", str(tmp_path / "same"),
                   "--allow-subset").returncode == 0
