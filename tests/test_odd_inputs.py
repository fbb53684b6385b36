"""Odd inputs that ended in tracebacks, hangs or misleading messages (issue 26): huge integers and deep
nesting in YAML and in flags, alias bombs of long strings, corrupt caches and part files, odd digits in
the environment, file names that are not UTF-8, torchrun on CPU, config keys spelled like their flags,
switches set in a file turned off by a flag, and messages that name the wrong flag. Each ends in a result
or in one line and exit status 2, leaving nothing behind."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ROOT, needs_shared_data, refused_in_process, run_cli
from harness.cli import main

HUGE = "9" * 5000  # over Python's 4,300 digits for int <-> text
CODE_PROBLEM = """\
id: p1
category: c
prompt: "def f():\\n"
entry_point: f
reference: "    return 1\\n"
test: "def check(candidate):\\n    assert candidate() == 1\\n"
"""


def suite_of(tmp_path: Path, problem: str) -> Path:
    folder = tmp_path / "suite"
    folder.mkdir(exist_ok=True)
    (folder / "p.yaml").write_text(problem)
    return folder


def run_args(tmp_path: Path, *flags: str) -> list[str]:
    return ["run", "--model", "reference", "--suite", "core", "--limit", "1", "--results-dir", str(tmp_path),
            "--run-name", "r", *flags]


# ------------------------------------------------------------------------------- huge and deep values

def test_huge_integers_in_a_config_and_in_shard(capsys, tmp_path):
    config = tmp_path / "run.yaml"
    config.write_text(f"seed: {HUGE}\n")
    assert "run.yaml" in refused_in_process(run_args(tmp_path, "--config", str(config)), capsys)
    assert "shard" in refused_in_process(run_args(tmp_path, "--shard", f"1/{HUGE}"), capsys)
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize("problem,field", [
    (CODE_PROBLEM.replace("id: p1", f"id: p1\ntimeout: {HUGE}"), "p.yaml"),
    ("id: p1\ncategory: c\nturns: [x = 1, print(x)]\ntests:\n  - expected_literal: '" + "-" * 100_000 + "1'\n",
     "expected_literal"),
    (CODE_PROBLEM + "public_tests: ['assert candidate() == " + "-" * 100_000 + "1']\n", "public_tests"),
    (CODE_PROBLEM.replace("== 1", "== " + "-" * 100_000 + "1"), "'test'"),
])
def test_huge_and_deeply_nested_problems_are_refused_by_validate_and_run(capsys, tmp_path, problem, field):
    suite = suite_of(tmp_path, problem)
    assert field in refused_in_process(["validate", str(suite)], capsys)
    assert field in refused_in_process(["run", "--model", "reference", "--suite", str(suite), "--results-dir",
                                        str(tmp_path), "--run-name", "r"], capsys)


def test_an_alias_bomb_of_long_strings_is_refused_by_its_expanded_size(capsys, tmp_path):
    """10 KB of YAML that would expand to about 10 GB of text: few values, long ones."""
    lines = ["a0: &a0 " + "x" * 2000]
    lines += [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]" for i in range(1, 7)]
    (tmp_path / "bomb.yaml").write_text("\n".join(lines) + "\n")
    assert (tmp_path / "bomb.yaml").stat().st_size < 12_000
    assert "expand" in refused_in_process(run_args(tmp_path, "--config", str(tmp_path / "bomb.yaml")), capsys)


# ------------------------------------------------------------------------------- corrupt caches and parts

def test_a_damaged_tiny_model_is_rebuilt(monkeypatch, tmp_path):
    from harness.backends.huggingface.tiny_models import tiny_model_path

    monkeypatch.setenv("HARNESS_CACHE", str(tmp_path))
    built = tiny_model_path("tiny-codegen")
    good = {p.name: p.read_bytes() for p in built.iterdir()}
    (built / "config.json").unlink()
    assert {p.name: p.read_bytes() for p in tiny_model_path("tiny-codegen").iterdir()} == good
    next(built.glob("*.safetensors")).write_bytes(b"\0" * 64)
    assert {p.name: p.read_bytes() for p in tiny_model_path("tiny-codegen").iterdir()} == good
    assert [p.name for p in (tmp_path / "tiny-models").iterdir()] == [built.name]  # nothing left aside


def sharded_parts(tmp_path: Path) -> Path:
    result = run_cli("-q", *run_args(tmp_path, "--shard", "0/1", "--no-verdict-cache"))
    assert result.returncode == 0, result.stderr[-3000:]
    return tmp_path / "r"


def test_merge_with_a_timings_file_that_is_not_utf8_or_lacks_a_key(tmp_path):
    run = sharded_parts(tmp_path)
    [timings] = (run / "parts").glob("*.timings.json")
    recorded = timings.read_text()
    corrupt = run / "parts" / "shard-9.rank-0.timings.json"
    corrupt.write_bytes(b"\xff\xfe not json")
    timings.write_text(json.dumps({k: v for k, v in json.loads(recorded).items() if k != "sandbox"}))
    refused = run_cli("merge", str(run))
    errors = [line for line in refused.stderr.splitlines() if line.startswith("error:")]
    assert refused.returncode == 2 and len(errors) == 1 and "Traceback" not in refused.stderr, refused.stderr
    assert "timings" in errors[0] and not (run / "summary.json").exists()
    timings.write_text(recorded)  # the clocks of the other process are lost, the results are not
    merged = run_cli("merge", str(run))
    assert merged.returncode == 0 and "Traceback" not in merged.stderr, merged.stderr
    assert f"{corrupt}: not a timings record" in merged.stderr and (run / "summary.json").exists()


# ------------------------------------------------------------------------------- the environment and names

@pytest.mark.parametrize("spec,variables", [
    ("auto", {"SLURM_ARRAY_TASK_ID": "²", "SLURM_ARRAY_TASK_COUNT": "3"}),
    ("auto/3", {"JOB_COMPLETION_INDEX": "¹"}),
])
def test_superscript_digits_in_the_environment(capsys, monkeypatch, tmp_path, spec, variables):
    for name, value in variables.items():
        monkeypatch.setenv(name, value)
    line = refused_in_process(run_args(tmp_path, "--shard", spec), capsys)
    assert next(iter(variables)) in line and "whole number" in line
    assert not (tmp_path / "r").exists()


def test_a_samples_file_named_in_another_encoding_is_refused_before_anything_runs(tmp_path):
    folder = os.fsencode(tmp_path)
    name = folder + b"/samples-\xff.jsonl"
    with open(name, "wb") as handle:
        handle.write(json.dumps({"task_id": "core/he-roman", "completion": "    return 1\n"}).encode() + b"\n")
    result = subprocess.run([sys.executable, "-m", "harness.cli", "evaluate", "--suite", "core", "--samples", name,
                             "--results-dir", folder + b"/out"], cwd=ROOT, capture_output=True, text=True,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert result.returncode == 2 and len(errors) == 1 and "Traceback" not in result.stderr, result.stderr[-3000:]
    assert "UTF-8" in errors[0] and "samples" in errors[0]
    assert not (tmp_path / "out").exists()


def test_torchrun_on_a_cpu_machine_without_device_cpu(tmp_path):
    result = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                             "-m", "harness.cli", "-q", *run_args(tmp_path, "--no-verdict-cache")], cwd=ROOT,
                            capture_output=True, text=True, timeout=300,
                            env={**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1",
                                 "CUDA_VISIBLE_DEVICES": ""})
    assert result.returncode == 0, result.stderr[-3000:]
    ranks = json.loads((tmp_path / "r" / "summary.json").read_text())["timings"]["processes"]
    assert sorted(p["rank"] for p in ranks) == [0, 1]


def test_the_infilling_refusal_leaves_no_run_folder(capsys, tmp_path):
    data = str(needs_shared_data("infilling/HumanEval-SingleLineInfilling.jsonl.gz"))
    line = refused_in_process(["run", "--suite", "humaneval-infilling-single-line", "--data", data, "--limit", "1",
                               "--backend", "openai", "--base-url", "http://127.0.0.1:9/v1", "--model", "m",
                               "--results-dir", str(tmp_path), "--run-name", "fim"], capsys)
    assert "fill in the middle" in line
    assert not (tmp_path / "fim").exists()


# ------------------------------------------------------------------------------- config keys and switches

def test_config_keys_spelled_like_their_flags(tmp_path):
    config = tmp_path / "run.yaml"
    config.write_text("num-samples: 2\nno-dedup: true\nno-verdict-cache: true\n")
    result = run_cli("-q", *run_args(tmp_path, "--config", str(config)))
    assert result.returncode == 0, result.stderr[-3000:]
    recorded = json.loads((tmp_path / "r" / "summary.json").read_text())["config"]
    assert recorded["n"] == 2 and recorded["dedup"] is False and recorded["verdict_cache"] is False


def test_a_switch_set_in_a_file_is_turned_off_by_a_flag(tmp_path):
    from harness.cli import parser
    from harness.commands import run_config

    config = tmp_path / "run.yaml"
    config.write_text("exclude_defective: true\ndedup: false\nkv_reuse: false\noverwrite: true\n")
    args = parser().parse_args(["run", "--config", str(config), "--no-exclude-defective", "--dedup", "--kv-reuse",
                                "--no-overwrite"])
    built = run_config(args)
    assert (built.exclude_defective, built.dedup, built.kv_reuse, built.overwrite) == (False, True, True, False)


def test_a_config_giving_one_option_under_two_names(capsys, tmp_path):
    config = tmp_path / "run.yaml"
    config.write_text("n: 2\nnum-samples: 3\n")
    assert "same option" in refused_in_process(run_args(tmp_path, "--config", str(config)), capsys)


# ------------------------------------------------------------------------------- messages naming the right thing

def test_evaluate_into_a_finished_folder_does_not_suggest_resume(capsys, tmp_path):
    samples = tmp_path / "s.jsonl"
    samples.write_text(json.dumps({"task_id": "core/he-roman", "completion": "    return 1\n"}) + "\n")
    argv = ["-q", "evaluate", "--suite", "core", "--samples", str(samples), "--results-dir", str(tmp_path),
            "--run-name", "e"]
    assert main(argv) == 0
    capsys.readouterr()
    line = refused_in_process(argv, capsys)
    assert "--resume" not in line and "--overwrite" in line


def test_the_subset_refusal_names_the_flags_that_apply(tmp_path):
    from harness.reports.compare import compare_runs
    from harness.reports.finished_runs import load_run
    from harness.errors import InputError

    for name, limit in (("a", "2"), ("b", "3")):
        assert run_cli("-q", "run", "--model", "reference", "--limit", limit, "--results-dir", str(tmp_path),
                       "--run-name", name, "--no-verdict-cache").returncode == 0
    with pytest.raises(InputError) as refused:
        compare_runs(load_run(tmp_path / "a"), load_run(tmp_path / "b"))
    # Runs of different --limit differ in their settings' suite checksum first: the refusal that names
    # --allow-subset must be the one a subset gets, and --allow-subset must then be enough.
    assert "--allow-subset" in refused.value.one_line(), refused.value.one_line()
    assert compare_runs(load_run(tmp_path / "a"), load_run(tmp_path / "b"), allow_subset=True).stats.problems == 2


def test_an_empty_file_of_urls(capsys, tmp_path):
    urls = tmp_path / "urls.txt"
    urls.write_text("# none yet\n\n")
    line = refused_in_process(run_args(tmp_path, "--backend", "openai", "--model", "m", "--base-url", f"@{urls}"),
                              capsys)
    assert "urls.txt" in line and "no URL" in line


def test_more_threads_than_cores_is_warned_about(caplog):
    """In this process, which keeps its own count afterwards (a run with --threads 4096 costs seconds more)."""
    import torch

    from harness.config import RunConfig
    from harness.runs.launch.threads import set_threads

    before = torch.get_num_threads()
    try:
        assert set_threads(RunConfig(), os.cpu_count() + 1).threads == os.cpu_count() + 1  # kept, as recorded
    finally:
        torch.set_num_threads(before)
    assert f"more than this machine's {os.cpu_count()} CPU cores" in caplog.text
