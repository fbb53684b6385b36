"""What docs/models.md claims about a sample's dependence on how it was computed. On CPU the intra-op thread
count changes how matrix products are split, and batching changes padding and shapes, so both can change
samples: they are part of a run's identity. The thread count is recorded, set the same in every process
(rank 0's), adopted by ``--resume`` and refused there when it differs, like the batch size."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import yaml

from conftest import ROOT, run_cli

SMALL = ["--model", "tiny-codegen", "--device", "cpu", "--problems", "core/vowel-count", "--num-samples", "1",
         "--max-new-tokens", "4", "--temperature", "0.8", "--seed", "3"]


def recorded_threads(run: Path) -> tuple[int, list[int]]:
    summary = json.loads((run / "summary.json").read_text())
    config = yaml.safe_load((run / "config.yaml").read_text())
    assert summary["config"]["threads"] == config["threads"]
    return config["threads"], [p["threads"] for p in summary["timings"]["processes"]]


def test_thread_count_is_recorded_adopted_on_resume_and_checked(tmp_path):
    first = run_cli("-q", "run", *SMALL, "--results-dir", str(tmp_path), "--run-name", "t",
                    env_extra={"OMP_NUM_THREADS": "1"})
    assert first.returncode == 0, first.stderr
    assert recorded_threads(tmp_path / "t") == (1, [1])  # the default: this process's count
    # Resumed where the default would be 2 threads: the run's own count is kept, in every attempt.
    again = run_cli("-q", "run", *SMALL, "--results-dir", str(tmp_path), "--run-name", "t", "--resume",
                    env_extra={"OMP_NUM_THREADS": "2"})
    assert again.returncode == 0, again.stderr
    assert recorded_threads(tmp_path / "t")[0] == 1
    for option, value in (("--threads", "2"), ("--batch-size", "3")):
        refused = run_cli("-q", "run", *SMALL, "--results-dir", str(tmp_path), "--run-name", "t", "--resume",
                          option, value)
        assert refused.returncode == 2, refused.stderr
        errors = [line for line in refused.stderr.splitlines() if line.startswith("error:")]
        assert len(errors) == 1 and "cannot resume" in errors[0]
        assert f"field '{option[2:].replace('-', '_')}'" in errors[0]


def test_every_process_computes_with_the_runs_thread_count(tmp_path):
    """Under torchrun with OMP_NUM_THREADS=2, ``--threads 1`` is what both ranks use."""
    result = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                             "-m", "harness.cli", "-q", "run", *SMALL, "--problems", "core/vowel-count,core/he-roman",
                             "--batch-size", "1", "--threads", "1", "--results-dir", str(tmp_path),
                             "--run-name", "two"],
                            cwd=ROOT, capture_output=True, text=True, timeout=600,
                            env={**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "2"})
    assert result.returncode == 0, result.stderr[-3000:]
    threads, per_process = recorded_threads(tmp_path / "two")
    assert threads == 1 and sorted(per_process) == [1, 1]
