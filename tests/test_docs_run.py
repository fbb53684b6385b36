"""Every ``run-benchmark`` command that the README and the ``docs/`` pages show, unless its block is marked
``<!-- not run: why -->``, runs here exactly as shown (the same argv, in a subprocess as a user types it), in a
temporary folder laid out as a reader's would be at that point: a copy of the repository's committed
``results/`` (so the commands that overwrite a run write into the copy, never into the repository), the public
``mtpb.jsonl`` linked from ``../shared/data`` and a ``samples.jsonl`` in ``evaluate``'s format. Each must exit 0
and leave one concrete thing behind (a file, a line). A shown command that this file does not run fails
``test_every_unmarked_command_is_run_here``: run it here, or mark its block with the reason and the test that
runs the same path. tests/test_docs.py parses every command, marked or not."""

from __future__ import annotations

import json
import os
import select
import shlex
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from urllib.request import urlopen

import pytest

from conftest import ROOT, needs_shared_data, run_cli
from test_docs import _shown_commands

Check = Callable[[Path, subprocess.CompletedProcess], None]


def _summary(folder: Path) -> dict:
    return json.loads((folder / "summary.json").read_text())


def _reference_run(cwd: Path, _: subprocess.CompletedProcess) -> None:
    made = [path for path in (cwd / "results").glob("core-reference-*") if path.is_dir()]
    assert len(made) == 1 and _summary(made[0])["overall"]["pass@1"] == 1.0


def _validated(_: Path, result: subprocess.CompletedProcess) -> None:
    assert "references: 138/138 conversations passed" in result.stdout


def _evaluated(cwd: Path, _: subprocess.CompletedProcess) -> None:
    verdicts = [json.loads(line) for line in (cwd / "samples.jsonl_results.jsonl").read_text().splitlines()]
    assert verdicts and all(verdict["passed"] for verdict in verdicts)


def _imported(cwd: Path, _: subprocess.CompletedProcess) -> None:
    assert (cwd / "mtpb-suite" / "suite.yaml").is_file() and len(list((cwd / "mtpb-suite").glob("p*.yaml"))) == 115


def _reported(cwd: Path, _: subprocess.CompletedProcess) -> None:
    report = (cwd / "report" / "report.md").read_text()
    assert "he40-llama" in report and "he40-hf" in report and (cwd / "report" / "report.html").is_file()


def _viewed(*runs: str) -> Check:
    def check(cwd: Path, _: subprocess.CompletedProcess) -> None:
        page = (cwd / "view.html").read_text()
        assert page.lower().startswith("<!doctype html")
        assert all(run in page for run in runs)
    return check


def _compared(_: Path, result: subprocess.CompletedProcess) -> None:
    assert "Result: no significant regression" in result.stdout


def _listed(_: Path, result: subprocess.CompletedProcess) -> None:
    assert "reference" in result.stdout and "core" in result.stdout


def _repaired(cwd: Path, _: subprocess.CompletedProcess) -> None:
    made = list((cwd / "results").glob("core-tiny-codegen-*"))
    assert len(made) == 1, made
    feedback = _summary(made[0])["feedback"]
    assert feedback["mode"] == "errors" and feedback["max_repairs"] == 2
    assert feedback["repairs"]["made"] > 0  # the tiny model's noise fails, so the model is asked again


def _regenerated(cwd: Path, _: subprocess.CompletedProcess) -> None:
    """The copy of the baseline was written again (its folder is the one the config names) and scores as the
    committed one does; tests/test_report_compare.py checks it sample for sample."""
    committed = ROOT / "results" / "baselines" / "core-tiny-codegen"
    again = cwd / "results" / "baselines" / "core-tiny-codegen"
    assert (again / "summary.json").stat().st_mtime > (committed / "summary.json").stat().st_mtime
    assert _summary(again)["overall"] == _summary(committed)["overall"]


REAL = "results/real/he40-llama results/real/he40-hf"
# (page, command as shown after `run-benchmark`) -> what it must leave behind
RUN: dict[tuple[str, str], Check] = {
    ("README.md", "run --suite core --model reference"): _reference_run,
    ("README.md", "validate core --references"): _validated,
    ("README.md", "evaluate --suite core --samples samples.jsonl --k 1,10"): _evaluated,
    ("README.md", "import mtpb mtpb.jsonl --out mtpb-suite"): _imported,
    ("README.md", f"report {REAL} --out report/"): _reported,
    ("README.md", f"view {REAL} --out view.html"): _viewed("he40-llama", "he40-hf"),
    ("README.md", "compare --baseline results/real/he40-hf --candidate results/real/he40-llama"): _compared,
    ("README.md", "list"): _listed,
    ("docs/execution-feedback.md", "run --suite core --model tiny-codegen --problems core/vowel-count "
     "--max-new-tokens 24 --feedback errors --max-repairs 2"): _repaired,
    ("docs/reports.md", "view results/real/he40-llama --out view.html"): _viewed("he40-llama"),
    ("docs/reports.md", "view results/real/he40-hf results/real/he40-llama --out view.html"):
        _viewed("he40-llama", "he40-hf"),
    ("docs/reports.md", "run --config results/baselines/core-tiny-codegen.yaml --overwrite --no-verdict-cache"):
        _regenerated,
}
SERVE = ("README.md", "serve --port 8080")  # a service: started, asked /health, stopped (below)


def _unmarked() -> set[tuple[str, str]]:
    return {(where.split(":")[0], shlex.join(argv)) for where, argv, marked in _shown_commands() if not marked}


def test_every_unmarked_command_is_run_here():
    assert _unmarked() == {*RUN, SERVE}


def _reader_folder(tmp_path: Path, command: str) -> Path:
    """What a reader has at hand: the committed runs (a copy; not this checkout's own runs beside them), and
    the files the command names."""
    for committed in ("real", "baselines"):
        shutil.copytree(ROOT / "results" / committed, tmp_path / "results" / committed, symlinks=True)
    if " mtpb.jsonl " in f" {command} ":
        (tmp_path / "mtpb.jsonl").symlink_to(needs_shared_data("mtpb.jsonl"))
    if "samples.jsonl" in command:
        _write_samples(tmp_path / "samples.jsonl")
    return tmp_path


def _write_samples(path: Path) -> None:
    """Samples generated elsewhere, in evaluate's multi-turn format (docs/commands.md): the references of two
    core problems, ten samples of every test case (``--k 1,10`` needs ten; the sandbox runs each program once)."""
    from harness.suites.registry import resolve_suite

    suite = resolve_suite("core")
    with path.open("w") as handle:
        for problem in (suite.problem("core/vowel-count"), suite.problem("core/binary-search")):
            for case in [case for case in range(len(problem.tests)) for _ in range(10)]:
                handle.write(json.dumps({"task_id": problem.id, "case": case,
                                         "completions": problem.filled_references(case)}) + "\n")


@pytest.mark.parametrize("page,command", sorted(RUN), ids=[f"{p}: {c[:60]}" for p, c in sorted(RUN)])
def test_the_command_runs_as_shown(page, command, tmp_path):
    cwd = _reader_folder(tmp_path, command)
    result = run_cli(*shlex.split(command), cwd=cwd)
    assert result.returncode == 0, f"{page}: run-benchmark {command}: {result.stderr[-2000:]}"
    RUN[page, command](cwd, result)


def test_serve_runs_as_shown(tmp_path):
    """``serve --port 8080`` as shown (on 127.0.0.1, its default host): it answers ``/health`` and stops
    cleanly on SIGTERM. Skips when something else holds port 8080, since the command cannot run then."""
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the server binds: TIME_WAIT is no owner
        try:
            probe.bind(("127.0.0.1", 8080))
        except OSError:
            pytest.skip("port 8080 is taken on this machine")
    proc = subprocess.Popen([sys.executable, "-m", "harness.cli", *shlex.split(SERVE[1])], cwd=tmp_path,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})
    try:
        ready = select.select([proc.stdout], [], [], 120)[0]
        line = proc.stdout.readline() if ready else ""
        if not line and proc.poll() is not None and "isolation" in proc.stderr.read() \
                and os.environ.get("CI") != "true":
            pytest.skip("serve needs full isolation (its default --sandbox full), which this machine lacks")
        assert line.startswith("serving on"), line  # printed once the sandbox has passed its canary
        health = _get_health(proc)
        assert health["status"] == 200, health
    finally:
        proc.terminate()
        try:
            code = proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            code = proc.wait()
        proc.stdout.close()
        proc.stderr.close()
    assert code == 0, "SIGTERM must stop the service cleanly"


def _get_health(proc: subprocess.Popen) -> dict:
    for _ in range(300):
        assert proc.poll() is None, "serve ended before answering /health"
        try:
            with urlopen("http://127.0.0.1:8080/health", timeout=5) as response:
                return {"status": response.status, "body": response.read().decode()}
        except OSError:
            time.sleep(0.1)
    raise AssertionError("serve did not answer /health on 127.0.0.1:8080 within 30 s")
