"""Fuzzing run folders: a finished run and an unmerged one get planted files, links at the harness's own
names, truncated and corrupt files, folders where files were, files removed; then ``run --resume``,
``run --overwrite``, a shard, ``merge`` or ``view`` is pointed at them. Whatever happens, the command ends
with exit 0, or exit 2 and one line; it never changes anything but the run's own harness files (a planted
file of the user's is kept as it was, nothing outside the folder changes) and never leaves a ``*.tmp``.
In-process, with the reference model, and few examples: it adds well under a minute."""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import run_cli
from harness.cli import main
from harness.runs.folder.claim import HARNESS_FILES

FUZZ = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
RUN = ["--model", "reference", "--problems", "core/vowel-count,core/he-roman", "--batch-size", "1",
       "--no-verdict-cache", "--workers", "1"]
LINKABLE = sorted(HARNESS_FILES) + ["parts/first"]


@pytest.fixture(scope="module")
def templates(tmp_path_factory) -> dict[str, Path]:
    """A finished plain run, and a sharded run (one shard of one) every group of which is done, unmerged."""
    root = tmp_path_factory.mktemp("templates")
    for name, extra in (("finished", []), ("unmerged", ["--shard", "0/1"])):
        out = run_cli("-q", "run", *RUN, "--results-dir", str(root), "--run-name", name, *extra)
        assert out.returncode == 0, out.stderr[-3000:]
    return {"finished": root / "finished", "unmerged": root / "unmerged"}


def files_in(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file() and not p.is_symlink())


def state(root: Path) -> dict[str, str]:
    """Every path under ``root``: a file's bytes, a link's target, or 'dir'."""
    seen = {}
    for path in sorted(root.rglob("*")):
        key = str(path.relative_to(root))
        seen[key] = ("link->" + os.readlink(path) if path.is_symlink() else "dir" if path.is_dir()
                     else path.read_bytes().hex())
    return seen


def harness_owned(key: str) -> bool:
    """A path of the run folder that the harness may write or remove (its own names, its part files)."""
    parts = key.split("/")
    return parts[0] == "run" and (len(parts) == 1 or (parts[1] in HARNESS_FILES and len(parts) <= 3
                                                      and not parts[-1].startswith("user-")))


mutations = st.lists(st.one_of(
    st.tuples(st.just("plant"), st.sampled_from(["user-notes.txt", "parts/user-notes.txt", "parts/user-x.jsonl"]),
              st.binary(max_size=64)),
    st.tuples(st.just("link"), st.sampled_from(LINKABLE), st.sampled_from(["outside/data.txt", "outside/dir",
                                                                           "outside/missing"])),
    st.tuples(st.just("truncate"), st.integers(0, 40), st.floats(0, 1)),
    st.tuples(st.just("corrupt"), st.integers(0, 40), st.binary(min_size=1, max_size=8)),
    st.tuples(st.just("folder"), st.sampled_from(["samples.jsonl", "summary.json", "config.yaml", "parts/first"]),
              st.just(b"")),
    st.tuples(st.just("remove"), st.integers(0, 40), st.just(b"")),
), min_size=1, max_size=3)
commands = st.sampled_from([["run", *RUN, "--resume"], ["run", *RUN, "--overwrite"],
                            ["run", *RUN, "--shard", "0/1", "--merge-when-complete"], ["merge"], ["view"]])


def mutate(run_dir: Path, root: Path, mutation: tuple) -> None:
    kind, what, detail = mutation
    files = files_in(run_dir)
    if kind in ("truncate", "corrupt", "remove"):
        if not files:
            return
        target = run_dir / files[what % len(files)]
        data = target.read_bytes()
        if kind == "truncate":
            target.write_bytes(data[: int(len(data) * detail)])
        elif kind == "corrupt":
            at = len(data) // 2
            target.write_bytes(data[:at] + detail + data[at + len(detail):])
        else:
            target.unlink()
        return
    if what == "parts/first":
        parts = sorted((run_dir / "parts").glob("*.jsonl")) if (run_dir / "parts").is_dir() else []
        if not parts or (run_dir / "parts").is_symlink():
            return
        what = str(parts[0].relative_to(run_dir))
    path = run_dir / what
    if not path.parent.is_dir() or path.parent.is_symlink():
        return
    if kind == "plant":
        path.write_bytes(detail)
        return
    if path.is_symlink() or path.is_file():
        path.unlink()
    elif path.is_dir():
        shutil.rmtree(path)
    if kind == "link":
        path.symlink_to(root / detail)
    else:
        path.mkdir()
        (path / "user-inside.txt").write_text("the user's\n")


def run_in_process(argv: list[str]) -> tuple[int, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(argv)
        except SystemExit as exc:  # argparse
            code = exc.code
    return code, err.getvalue()


@FUZZ
@given(template=st.sampled_from(["finished", "unmerged"]), changes=mutations, command=commands)
def test_a_tampered_run_folder_is_one_line_or_fine_and_only_harness_files_change(templates, template, changes,
                                                                                  command):
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        (root / "outside" / "dir").mkdir(parents=True)
        (root / "outside" / "data.txt").write_text("the user's\n")
        run_dir = root / "run"
        shutil.copytree(templates[template], run_dir, symlinks=True)
        for change in changes:
            mutate(run_dir, root, change)
        before = state(root)
        if command[0] == "run":
            argv = ["-q", *command, "--results-dir", str(root), "--run-name", "run"]
        elif command == ["merge"]:
            argv = ["-q", "merge", str(run_dir)]
        else:
            argv = ["-q", "view", str(run_dir), "--out", str(root / "outside" / "view.html")]
        code, err = run_in_process(argv)
        errors = [line for line in err.splitlines() if line.startswith("error:")]
        assert code in (0, 2), (code, err[-2000:])
        assert code == 0 or (len(errors) == 1 and "Traceback" not in err), err[-2000:]
        after = state(root)
        changed = {key for key in before.keys() | after.keys() if before.get(key) != after.get(key)}
        assert {key for key in changed if not harness_owned(key) and key != "outside/view.html"} == set(), changed
        assert [key for key in after if key.endswith(".tmp") and key not in before] == [], after.keys()
