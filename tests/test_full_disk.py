"""A full disk under every command that writes: one line naming the file, exit 2, no ``*.tmp`` left, and what
was finished kept (a run's part files, ``evaluate``'s verdicts). The disk is a real small tmpfs that
bubblewrap mounts over the output folder (as the verdict-cache tests do), filled to leave a few KiB."""

from __future__ import annotations

import gzip
import json
import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ROOT, needs_shared_data, python_for_sandbox_none, run_cli
from test_verdict_cache import mount_argv

REFERENCE = ["--model", "reference", "--problems", "core/vowel-count,core/he-roman,core/he-is-anagram",
             "--batch-size", "1", "--no-verdict-cache"]
# Leaves ``keep`` bytes free on the disk mounted at ``disk``.
FILL = ("import os, sys; d, keep = sys.argv[1], int(sys.argv[2]); s = os.statvfs(d); "
        "open(os.path.join(d, 'filler'), 'wb').write(bytes(max(s.f_bavail * s.f_frsize - keep, 0)))")


def on_full_disk(tmp_path: Path, args: list[str], keep: int, copy: Path | None = None,
                 then: list[str] | None = None, env: dict[str, str] | None = None) -> tuple[int, str, list[str]]:
    """Run the CLI with ``tmp_path/disk`` a 4 MiB tmpfs (``copy`` copied in first) filled to leave ``keep``
    bytes: its exit status, its stderr, and every path on the disk when it ended. ``then``: a second command
    run once the disk has room again (its exit status in ``tmp_path/log/then``)."""
    disk, log = tmp_path / "disk", tmp_path / "log"
    disk.mkdir()
    log.mkdir()
    python = shlex.quote(sys.executable)
    setup = f"cp -a {shlex.quote(str(copy))} {shlex.quote(str(disk))}/ && " if copy else ""
    script = (f"{setup}{python} -c {shlex.quote(FILL)} {shlex.quote(str(disk))} {keep} && "
              f"{{ {python} -m harness.cli {shlex.join(args)} 2> {log}/err; echo $? > {log}/rc; }}; "
              f"cd {shlex.quote(str(disk))} && find . > {log}/listing")
    if then:
        script += (f" && rm filler && {python} -m harness.cli {shlex.join(then)} > {log}/then-out 2>&1; "
                   f"echo $? > {log}/then")
    argv = [*mount_argv(["--size", str(4 << 20), "--tmpfs", str(disk)]), "sh", "-c", script]
    out = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=600,
                                       env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})})
    assert (log / "rc").exists(), out.stderr[-3000:]
    return int((log / "rc").read_text()), (log / "err").read_text(), (log / "listing").read_text().split()


def refused_in_one_line(rc: int, err: str, listing: list[str], needle: str) -> str:
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert rc == 2 and len(errors) == 1 and "Traceback" not in err, err[-3000:]
    assert needle in errors[0], errors[0]
    assert [path for path in listing if path.endswith(".tmp")] == [], listing
    return errors[0]


@pytest.fixture(scope="module")
def finished(tmp_path_factory) -> Path:
    results = tmp_path_factory.mktemp("finished")
    out = run_cli("-q", "run", *REFERENCE, "--results-dir", str(results), "--run-name", "r")
    assert out.returncode == 0, out.stderr[-3000:]
    return results / "r"


@pytest.mark.parametrize("keep, says", [(8 << 10, "the groups finished so far are kept"),
                                         (28 << 10, "the part files are kept")])
def test_run_on_a_full_disk_keeps_its_finished_groups_and_resumes(tmp_path, keep, says):
    """Out of space while appending a group (8 KiB left) or while merging (28 KiB left); --resume, once there
    is room, finishes the run."""
    run = ["-q", "run", *REFERENCE, "--results-dir", str(tmp_path / "disk"), "--run-name", "r"]
    rc, err, listing = on_full_disk(tmp_path, run, keep, then=[*run, "--resume"])
    line = refused_in_one_line(rc, err, listing, "No space left on device")
    assert says in line and "--resume" in line, line
    assert (tmp_path / "log" / "then").read_text().strip() == "0", (tmp_path / "log" / "then-out").read_text()


def test_evaluate_on_a_full_disk_keeps_every_verdict_beside_the_samples(tmp_path):
    data = needs_shared_data("HumanEval.jsonl.gz")
    problems = [json.loads(line) for line in gzip.open(data, "rt")][:20]
    samples = tmp_path / "samples.jsonl"
    samples.write_text("".join(json.dumps({"task_id": p["task_id"], "completion": p["canonical_solution"]}) + "\n"
                               for p in problems))
    rc, err, listing = on_full_disk(tmp_path, ["-q", "evaluate", "--suite", "humaneval", "--data", str(data),
                                               "--samples", str(samples), "--no-verdict-cache", "--sandbox", "none",
                                               "--sandbox-python", python_for_sandbox_none(),
                                               "--results-dir", str(tmp_path / "disk"), "--run-name", "e"], 2 << 10)
    line = refused_in_one_line(rc, err, listing, "every verdict is kept in")
    kept = [json.loads(line) for line in (tmp_path / "samples.jsonl_results.jsonl").read_text().splitlines()]
    assert [k["passed"] for k in kept] == [True] * 20, line
    assert not any(p.name.endswith(".tmp") for p in tmp_path.iterdir())


@pytest.mark.parametrize("command", ["report", "view", "import"])
def test_commands_writing_an_output_on_a_full_disk(tmp_path, finished, command):
    out = str(tmp_path / "disk" / "out")
    args = {"report": ["report", str(finished), "--out", out],
            "view": ["view", str(finished), "--out", out + ".html"],
            "import": ["import", "mtpb", str(needs_shared_data("mtpb.jsonl")), "--out", out]}[command]
    refused_in_one_line(*on_full_disk(tmp_path, args, 2 << 10), "No space left on device")


def test_merge_on_a_full_disk_keeps_the_parts(tmp_path):
    results = tmp_path / "made"
    for index in range(2):
        out = run_cli("-q", "run", *REFERENCE, "--results-dir", str(results), "--run-name", "s",
                      "--shard", f"{index}/2")
        assert out.returncode == 0, out.stderr[-3000:]
    parts = sorted(p.name for p in (results / "s" / "parts").iterdir())
    rc, err, listing = on_full_disk(tmp_path, ["merge", str(tmp_path / "disk" / "s")], 2 << 10, copy=results / "s")
    line = refused_in_one_line(rc, err, listing, "the part files are kept")
    assert sorted(p.removeprefix("./s/parts/") for p in listing if p.startswith("./s/parts/")) == parts, line
    assert "./s/summary.json" not in listing
    shutil.rmtree(results)


def test_a_full_cache_disk_while_a_tiny_model_is_built_is_one_line(tmp_path):
    """The writes without a message of their own (here: building a tiny model into a full HARNESS_CACHE)."""
    run = ["-q", "run", "--model", "tiny-codegen", "--limit", "1", "--max-new-tokens", "4",
           "--results-dir", str(tmp_path / "results"), "--run-name", "t"]
    line = refused_in_one_line(*on_full_disk(tmp_path, run, 2 << 10, env={"HARNESS_CACHE": str(tmp_path / "disk")}),
                               "No space left on device")
    assert "HARNESS_CACHE" in line, line
