"""Scoring never loads the model stack: every command but ``run`` works without importing torch,
transformers, accelerate or datasets (they cost about a second before anything is scored)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from conftest import ROOT, SHARED_DATA

HEAVY = ("torch", "transformers", "accelerate", "datasets")
# Runs the CLI in-process and prints which heavy modules it imported, whatever the exit status.
PROBE = """
import json, sys
from harness.cli import main
try:
    code = main(sys.argv[1:])
finally:
    print("MODULES " + json.dumps(sorted(m for m in %r if m in sys.modules)))
sys.exit(code)
""" % (HEAVY,)
BASELINE = ROOT / "results" / "baselines" / "core-tiny-codegen"


def _imported(*args: str) -> list[str]:
    result = subprocess.run([sys.executable, "-c", PROBE, *args], cwd=ROOT, capture_output=True, text=True,
                            timeout=600)
    lines = [line for line in result.stdout.splitlines() if line.startswith("MODULES ")]
    assert result.returncode == 0 and lines, result.stdout[-2000:] + result.stderr[-2000:]
    return json.loads(lines[-1].removeprefix("MODULES "))


@pytest.mark.parametrize("command", ["evaluate", "validate", "list", "report", "compare", "import"])
def test_commands_other_than_run_import_no_model_stack(command, tmp_path):
    if command == "evaluate":
        samples = tmp_path / "samples.jsonl"
        samples.write_text(json.dumps({"task_id": "core/he-is-anagram", "completion": "    return True\n"}) + "\n")
        args = ["-q", "evaluate", "--suite", "core", "--samples", str(samples), "--results-dir", str(tmp_path),
                "--no-verdict-cache"]
    elif command == "validate":
        args = ["validate", "core", "--references"]
    elif command == "list":
        args = ["list"]
    elif command == "report":
        args = ["report", str(BASELINE), "--out", str(tmp_path / "report")]
    elif command == "compare":
        args = ["compare", "--baseline", str(BASELINE), "--candidate", str(BASELINE)]
    else:
        data = SHARED_DATA / "mtpb.jsonl"
        if not data.exists():
            pytest.skip("public MTPB data not present")
        args = ["import", "mtpb", str(data), "--out", str(tmp_path / "mtpb")]
    assert _imported(*args) == []


def test_the_probe_sees_a_command_that_loads_the_model_stack(tmp_path):
    """The same probe on ``run`` with a tiny model reports torch: the check above can fail."""
    modules = _imported("-q", "run", "--suite", "core", "--model", "tiny-codegen", "--limit", "1",
                        "--max-new-tokens", "4", "--results-dir", str(tmp_path), "--run-name", "r")
    assert "torch" in modules and "transformers" in modules
