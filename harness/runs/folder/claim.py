"""Where a run's folder may be, and when the harness may reuse or replace one: nothing a user types can
make it write or delete outside ``--results-dir/<run name>``, or delete anything it did not make.

- The run name is one path component (see :func:`harness.validate_input.run_name`), so the folder is a
  direct child of ``--results-dir``; a symbolic link there is refused.
- Every folder the harness makes gets a marker file first. ``--overwrite`` replaces only a marked folder
  that holds nothing but the harness's own files, and only while holding its ``run.lock`` (so never the
  folder of a live ``run`` or ``evaluate``).
- A marked folder with no results yet (a start that failed before its first sample) is reused as if empty,
  so the corrected rerun is not blocked; `run` also removes such a stub when its start fails.
- ``--resume`` never deletes anything.
"""

from __future__ import annotations

import fcntl
import os
import re
import shutil
from pathlib import Path
from typing import IO

from harness import validate_input as validate
from harness.errors import InputError
from harness.run_files import foreign_entry, refuse_tampering, touch
from harness.runs.folder.layout import HARNESS_FILES, LOCK, MARKER, PART_FILE, PARTS, Layout

__all__ = ["HARNESS_FILES", "LOCK", "MARKER"]  # the names, from harness.run_files, for the runs stage


def default_name(*parts: str) -> str:
    """A valid run name made from free text (suite and model names, a samples file's stem, a time)."""
    name = re.sub(r"[^A-Za-z0-9._-]+", "_", "-".join(parts)).strip(".") or "run"
    return name[:validate.MAX_RUN_NAME]


def folder_for(results_dir: str, name: str) -> Path:
    """``results_dir/name``, after checking both; nothing is created yet."""
    validate.run_name(name)
    root = Path(results_dir)
    if root.exists() and not root.is_dir():
        raise InputError("exists and is not a folder", file=results_dir, field="results_dir")
    folder = root / name
    if folder.is_symlink():
        raise InputError("is a symbolic link; a run folder must be a real folder inside --results-dir",
                         file=str(folder), field="run_name")
    if folder.exists() and not folder.is_dir():
        raise InputError("exists and is not a folder", file=str(folder), field="run_name")
    return folder


def has_results(folder: Path) -> bool:
    """Whether any sample or summary was written there (a folder without them holds nothing to lose)."""
    layout = Layout(folder)
    if layout.summary.exists() or _nonempty(layout.samples):
        return True
    parts = layout.parts
    return parts.is_dir() and any(_nonempty(p) for p in layout.part_files())


def _nonempty(path: Path) -> bool:
    try:
        return path.stat().st_size > 0
    except OSError:
        return False


class FolderLock:
    """The held ``run.lock`` of a run folder: exclusive for a plain run, ``evaluate``, ``--overwrite`` and a
    merge; shared among the shards of a sharded run, so that none of those can start while a shard is live,
    and no shard while one of them is."""

    def __init__(self, folder: Path, shared: bool = False):
        self.folder = folder
        self.shared = shared
        path = folder / LOCK
        self.created = not path.exists()  # a killed run's lock file is left as it was found
        busy = ("a plain run, a merge or an --overwrite is writing to this results directory right now"
                if shared else "another run is writing to this results directory right now (a run, a shard or "
                               "a merge)")
        self._handle: IO | None = hold(path, shared=shared, busy=busy, folder=folder, field="run_name")
        if not shared:
            try:  # who holds it, for a person looking (unbuffered: a full disk must not stop the command)
                os.ftruncate(self._handle.fileno(), 0)
                os.write(self._handle.fileno(), f"pid {os.getpid()}\n".encode())
            except OSError:
                pass

    def release(self) -> None:
        """At the end of a run: drop the lock and its file (a shard leaves the file to the other shards)."""
        self._close()
        if not self.shared:
            (self.folder / LOCK).unlink(missing_ok=True)

    def withdraw(self) -> None:
        """A refusal: leave the folder as it was found."""
        self._close()
        if self.created and not self.shared:
            (self.folder / LOCK).unlink(missing_ok=True)

    def abandon(self) -> None:
        """A start that failed before its first sample: remove what it made, so the rerun starts clean
        (never under a shard: the other shards may be writing there)."""
        if not self.shared and not has_results(self.folder) and foreign_entry(self.folder) is None:
            self._close()
            shutil.rmtree(self.folder)
        else:
            self.withdraw()

    def _close(self) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None


def hold(path: Path, *, shared: bool, busy: str, folder: Path, field: str) -> IO:
    """``path`` opened and ``flock``-ed without waiting (refused with ``busy`` when held). A lock file that
    its holder removed on release while this process opened it is opened again, so that two processes never
    hold locks on two different files of the same name."""
    while True:
        try:
            # O_NOFOLLOW: a lock file planted as a symlink must not make a truncation hit another file.
            handle = os.fdopen(os.open(path, os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_NOFOLLOW, 0o644), "a+")
        except OSError as exc:
            raise InputError(f"cannot write to the run folder ({exc.strerror})", file=str(folder),
                             field="results_dir") from None
        try:
            fcntl.flock(handle, (fcntl.LOCK_SH if shared else fcntl.LOCK_EX) | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            raise InputError(busy, file=str(folder), field=field) from None
        try:
            if os.stat(path).st_ino == os.fstat(handle.fileno()).st_ino:
                return handle
        except FileNotFoundError:
            pass
        handle.close()


class ShardLock:
    """One task per shard: ``parts/shard<i>.lock``, held while the shard works (the file stays; a merge
    removes it with the parts)."""

    def __init__(self, folder: Path, index: int):
        path = Layout(folder).shard_lock(index)
        self._handle: IO | None = hold(path, shared=False, folder=folder, field="shard",
                                       busy=f"shard {index} is already running in another task")

    def release(self) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None


def claim(folder: Path, *, overwrite: bool, resume: bool | None) -> FolderLock:
    """Lock ``folder`` for this process and make it ready: new (created and marked), a stub from a failed
    start (cleared), an interrupted run (``resume``: kept as is; None for a command that cannot resume), or a
    finished one (``overwrite``: cleared). Returns the held lock; refuses with one line in every other case,
    having changed nothing."""
    try:
        existed = folder.is_dir() and any(folder.iterdir())
    except OSError as exc:
        raise InputError(f"cannot read the run folder ({exc.strerror})", file=str(folder), field="run_name") from None
    if existed and not (folder / MARKER).exists():
        raise InputError("exists and was not made by run-benchmark (no marker file); it is left alone: choose "
                         "another --run-name", file=str(folder), field="run_name")
    if existed and (resume or not overwrite):  # an --overwrite checks every entry before it clears (_clear)
        refuse_tampering(folder)
    made = not folder.exists()
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"cannot create the run folder ({exc.strerror})", file=str(folder),
                         field="results_dir") from None
    lock = FolderLock(folder)
    try:
        if existed:
            _reuse(folder, overwrite=overwrite, resume=resume)
        touch(folder / MARKER)
    except BaseException:
        lock.withdraw()
        if made:
            folder.rmdir()
        raise
    return lock


def claim_shard(folder: Path) -> FolderLock:
    """A shard's share of ``folder``: the shared lock, the folder made and marked if new. Nothing is ever
    cleared or removed (the other shards may be writing there, so a refused first shard leaves a marked
    stub, which any later run reuses); a folder with results that are not a run's is refused."""
    existed = folder.is_dir() and any(folder.iterdir())
    if existed and not (folder / MARKER).exists():
        raise InputError("exists and was not made by run-benchmark (no marker file); it is left alone: choose "
                         "another --run-name", file=str(folder), field="run_name")
    if existed:
        refuse_tampering(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        # Marked before anything else is made there: a shard arriving meanwhile sees a run folder.
        touch(folder / MARKER)
    except OSError as exc:
        raise InputError(f"cannot create the run folder ({exc.strerror})", file=str(folder),
                         field="results_dir") from None
    lock = FolderLock(folder, shared=True)
    if existed and not Layout(folder).config.exists() and has_results(folder):
        lock.withdraw()
        raise InputError("cannot add a shard: the folder has results but no config.yaml (it is not a run's); "
                         "nothing was changed", file=str(folder), field="shard")
    return lock


def _reuse(folder: Path, *, overwrite: bool, resume: bool | None) -> None:
    if resume and Layout(folder).config.exists():
        return  # the caller checks the settings match
    if not has_results(folder):
        _clear(folder)
        return
    if resume:
        raise InputError("cannot resume: the folder has results but no config.yaml (it is not an interrupted "
                         "`run`); nothing was changed", file=str(folder), field="resume")
    if not overwrite:
        resumable = "" if resume is None else "--resume to continue it, "
        raise InputError(f"results directory exists already; pass {resumable}--overwrite to replace it, or another "
                         "--run-name", file=str(folder), field="run_name")
    _clear(folder)


def _clear(folder: Path) -> None:
    """Remove the harness's files, keeping the held lock; refuse, removing nothing, if anything else is there
    (checked all the way down: a user's file inside ``parts/`` or a folder named like a result is kept)."""
    if foreign := foreign_entry(folder):
        raise InputError(f"holds {foreign!r}, which run-benchmark did not write; it is left alone: move it "
                         "away or choose another --run-name", file=str(folder), field="overwrite")
    remove_harness_files(folder)


def remove_harness_files(folder: Path, keep: tuple[str, ...] = (LOCK, MARKER)) -> None:
    """Unlink the harness's files (the part files one by one, then ``parts/`` if that empties it), never
    following a link and never removing anything else."""
    for name in sorted(HARNESS_FILES - set(keep)):
        path = folder / name
        if name == PARTS and path.is_dir() and not path.is_symlink():
            for part in path.iterdir():
                if PART_FILE.fullmatch(part.name) and not part.is_symlink() and part.is_file():
                    part.unlink()
            if not any(path.iterdir()):
                path.rmdir()
        elif path.is_file() and not path.is_symlink():
            path.unlink()
