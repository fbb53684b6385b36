"""Every number a user types is checked (finite, in range, the right type) for every command and config
key, and refused with one line and exit status 2 before anything is written: no pass@0, no pass@-1, no
timeout of nan, no regression called on a run compared with itself."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from conftest import refused_in_process
from harness.cli import main


def refused(argv: list[str], capsys: pytest.CaptureFixture) -> str:
    return refused_in_process(argv, capsys)


@pytest.mark.parametrize("flags,needle", [
    (["--k", "0"], "k"), (["--k", "-1"], "k"), (["--k", "1,x"], "k"), (["--k", ","], "k"),
    (["--timeout", "nan"], "--timeout"), (["--timeout", "inf"], "--timeout"), (["--timeout", "-1"], "timeout"),
    (["--timeout", "0"], "timeout"), (["--memory-mb", "-1"], "memory_mb"), (["--memory-mb", "1.5"], "--memory-mb"),
    (["--temperature", "nan"], "--temperature"), (["--temperature", "-0.1"], "temperature"),
    (["--top-p", "0"], "top_p"), (["--top-p", "1.5"], "top_p"), (["--n", "0"], "n"), (["--seed", "-1"], "seed"),
    (["--workers", "0"], "workers"), (["--max-retries", "-1"], "max_retries"),
    (["--request-timeout", "inf"], "--request-timeout"), (["--batch-size", "0"], "batch_size"),
    (["--batch-size", "x"], "--batch-size"), (["--threads", "0"], "threads"), (["--limit", "0"], "limit"),
    (["--max-new-tokens", "0"], "max_new_tokens"), (["--concurrency", "0"], "concurrency"),
])
def test_run_flags(flags, needle, capsys, tmp_path):
    line = refused(["run", "--model", "reference", "--results-dir", str(tmp_path / "r"), *flags], capsys)
    assert needle in line
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize("values,field", [
    ({"k": 1.5}, "k"), ({"k": [1, "x"]}, "k"), ({"k": 0}, "k"), ({"k": [True]}, "k"), ({"n": 2.0}, "n"),
    ({"n": None}, "n"), ({"n": "5"}, "n"), ({"problems": 5}, "problems"), ({"problems": [1, 2]}, "problems"),
    ({"suite": ["core"]}, "suite"), ({"overwrite": "no"}, "overwrite"), ({"resume": 1}, "resume"),
    ({"dedup": "false"}, "dedup"), ({"temperature": float("nan")}, "temperature"),
    ({"timeout": float("inf")}, "timeout"), ({"memory_mb": -1}, "memory_mb"), ({"run_name": "../x"}, "run_name"),
    ({"run_name": 5}, "run_name"), ({"seed": True}, "seed"), ({"batch_size": "big"}, "batch_size"),
    ({"sandbox": "off"}, "sandbox"), ({"dtype": 16}, "dtype"), ({"bogus": 1}, "bogus"),
])
def test_config_keys(values, field, capsys, tmp_path):
    config = tmp_path / "run.yaml"
    config.write_text(yaml.safe_dump({"model": "reference", **values}))
    line = refused(["run", "--config", str(config), "--results-dir", str(tmp_path / "r")], capsys)
    assert f"field '{field}'" in line and "run.yaml" in line
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize("text,needle", [
    ("1: 2\n", "option names are words"),
    ("[1, 2]\n", "must be a mapping"),
    ("k: [1, 2\n", "malformed YAML"),
])
def test_config_files_of_the_wrong_shape(text, needle, capsys, tmp_path):
    config = tmp_path / "run.yaml"
    config.write_text(text)
    assert needle in refused(["run", "--config", str(config)], capsys)


@pytest.mark.parametrize("flags,needle", [
    (["--k", "0"], "--k"), (["--k", "-1"], "--k"), (["--k", "1,x"], "--k"), (["--timeout", "nan"], "--timeout"),
    (["--timeout", "inf"], "--timeout"), (["--timeout", "-5"], "--timeout"), (["--memory-mb", "-1"], "--memory-mb"),
    (["--workers", "0"], "--workers"), (["--run-name", ".."], "--run-name"),
])
def test_evaluate_flags(flags, needle, capsys, tmp_path):
    samples = tmp_path / "s.jsonl"
    samples.write_text(json.dumps({"task_id": "core/he-roman", "completion": ""}) + "\n")
    line = refused(["evaluate", "--suite", "core", "--samples", str(samples), "--results-dir", str(tmp_path / "r"),
                    *flags], capsys)
    assert needle in line
    assert not (tmp_path / "r").exists() and not Path(f"{samples}_results.jsonl").exists()


@pytest.mark.parametrize("flags,needle", [
    (["--max-drop", "nan"], "--max-drop"), (["--max-drop", "-0.1"], "--max-drop"), (["--max-drop", "inf"], "--max-drop"),
    (["--alpha", "0"], "--alpha"), (["--alpha", "nan"], "--alpha"), (["--alpha", "1"], "--alpha"),
    (["--k", "0"], "--k"), (["--k", "1.5"], "--k"),
])
def test_compare_flags(flags, needle, capsys, tmp_path):
    assert needle in refused(["compare", "--baseline", str(tmp_path), "--candidate", str(tmp_path), *flags], capsys)


def test_report_seed(capsys, tmp_path):
    assert "--seed" in refused(["report", str(tmp_path), "--out", str(tmp_path / "o"), "--seed", "-1"], capsys)


def test_help_and_version(capsys):
    for argv in (["--help"], ["report", "--help"], ["--version"]):
        with pytest.raises(SystemExit) as stop:
            main(argv)
        assert stop.value.code == 0
    out = capsys.readouterr().out
    assert "95% CIs" in out and "run-benchmark 0.1.0" in out


def test_an_unknown_flag_is_one_line(capsys):
    assert "--no-such-flag" in refused(["run", "--no-such-flag"], capsys)
