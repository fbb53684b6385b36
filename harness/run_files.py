"""The files the harness writes into a run folder, and how it writes there: never through a symbolic link
planted in the folder, never over a file it did not make, and never leaving a ``*.tmp`` behind when the
disk fills (the error is one line, exit 2).

Used by the runs stage (``run``, ``evaluate``, ``merge``) and by every command that writes a file a user
names (``view --out``, ``compare --markdown``), which must not be a run's own file.
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Iterable
from pathlib import Path

from harness.errors import InputError

MARKER = ".run-benchmark"
LOCK = "run.lock"
PARTS = "parts"
CONFIG = "config.yaml"  # the run's recorded options and inputs
SAMPLES = "samples.jsonl"  # one line per sample, in canonical order (the merge of the parts)
SUMMARY = "summary.json"
# Everything the harness itself writes into a run folder (``run`` and ``evaluate``).
HARNESS_FILES = frozenset({MARKER, LOCK, CONFIG, SAMPLES, SUMMARY, PARTS, f"{SAMPLES}.tmp", f"{SUMMARY}.tmp"})
# What a process writes under parts/: its sample lines and timings, a shard's lock, a config being recorded.
PART_FILE = re.compile(r"(shard\d+of\d+-)?rank\d+-[0-9a-f]{12}\.(jsonl|timings\.json)|shard\d+\.lock"
                       r"|config-[0-9a-f]{12}\.yaml\.tmp")


def foreign_entry(folder: Path) -> str | None:
    """The first thing in a run folder (its path inside it) that is not one of the harness's own files: a
    name it never writes, a link, a folder where it writes a file, or anything inside ``parts/`` that is not
    a part file. None when the folder holds nothing else."""
    for entry in sorted(os.scandir(folder), key=lambda e: e.name):
        if entry.name not in HARNESS_FILES or entry.is_symlink():
            return entry.name
        if entry.name == PARTS and entry.is_dir(follow_symlinks=False):
            for inner in sorted(os.scandir(entry.path), key=lambda e: e.name):
                if not (PART_FILE.fullmatch(inner.name) and inner.is_file(follow_symlinks=False)):
                    return _first_inside(Path(inner.path), f"{PARTS}/{inner.name}")
        elif not entry.is_file(follow_symlinks=False):
            return _first_inside(Path(entry.path), entry.name)
    return None


def _first_inside(path: Path, shown: str) -> str:
    """A folder's first file (what a user would miss), else the folder itself."""
    if path.is_dir() and not path.is_symlink():
        inside = sorted(path.iterdir())
        if inside:
            return _first_inside(inside[0], f"{shown}/{inside[0].name}")
    return shown


def refuse_tampering(folder: Path, field: str = "run_name", other: str = "choose another --run-name") -> None:
    """Refuse a run folder where one of the harness's own names (or a part file) is a symbolic link, which
    writing or removing would follow, or is not what the harness makes there (a folder named like a file).
    ``field`` and ``other`` name the caller's argument (``merge`` has RUN_DIR, not --run-name)."""
    candidates = [folder / name for name in sorted(HARNESS_FILES)]
    parts = folder / PARTS
    if parts.is_dir() and not parts.is_symlink():
        candidates += sorted(p for p in parts.iterdir() if PART_FILE.fullmatch(p.name))
    for path in candidates:
        shown = str(path.relative_to(folder))
        if path.is_symlink():
            raise InputError(f"{shown} is a symbolic link, which run-benchmark never writes through nor removes; "
                             f"nothing was changed: remove it or {other}", file=str(folder), field=field)
        if path.exists() and path.is_dir() != (path == parts):
            raise InputError(f"{shown} is a {'folder' if path.is_dir() else 'file'}, where run-benchmark keeps a "
                             f"{'file' if path.is_dir() else 'folder'}; nothing was changed: move it away or {other}",
                             file=str(folder), field=field)


def refuse_run_file(path: Path, field: str) -> None:
    """An output a user names (``view --out``, ``compare --markdown``) must not be a run folder's own file."""
    for candidate in {path.absolute(), path.resolve()}:
        parent = candidate.parent
        if (parent / MARKER).exists() and candidate.name in HARNESS_FILES:
            inside = parent
        elif parent.name == PARTS and (parent.parent / MARKER).exists():
            inside = parent.parent
        else:
            continue
        raise InputError(f"is a file of the run folder {inside} (run-benchmark's own results); write elsewhere",
                         file=str(path), field=field)


def create_new(path: Path, append: bool = False) -> int:
    """A file descriptor on a file this process creates (never an existing file, never through a link)."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | (os.O_APPEND if append else 0)
    return os.open(path, flags, 0o644)


def touch(path: Path) -> None:
    """Create ``path`` if missing (a marker), without following a link there."""
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW, 0o644))


def write_atomically(path: Path, text: str | Iterable[str], field: str, keep_note: str = "") -> None:
    """``path`` replaced by ``text`` (or its pieces) through a new ``<name>.tmp`` beside it and a rename, so a
    crash never leaves it half-written. A leftover temporary of a killed process is replaced; a link there is
    refused. When the write fails (a full disk), the temporary is removed and the error is one line
    (``keep_note`` says what was kept)."""
    tmp = path.with_name(path.name + ".tmp")
    try:
        if tmp.is_symlink():
            raise InputError(f"{tmp.name} is a symbolic link, which run-benchmark never writes through; nothing "
                             "was changed", file=str(path.parent), field=field)
        tmp.unlink(missing_ok=True)
        with os.fdopen(create_new(tmp), "w", encoding="utf-8") as handle:
            handle.writelines([text] if isinstance(text, str) else text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise InputError(f"cannot write ({exc.strerror}){keep_note}", file=str(path), field=field) from None
