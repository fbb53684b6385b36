"""The part files of a run folder (``parts/...jsonl``), written and read.

Writing: one process's part file and its timings file, append-only, created by this process (never an
existing file, never through a link); a full disk is one line that keeps what was flushed (a line torn by
it is dropped and its group redone on ``--resume``). Reading: which batch groups are done in all of them,
how many lines they hold so far, and every process's timings."""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable, Collection
from pathlib import Path
from typing import Any

from harness.errors import InputError
from harness.jsonl import json_object_or_none
from harness.run_files import create_new
from harness.runs.folder.layout import timings_file as _timings_file

log = logging.getLogger(__name__)

FINGERPRINT = "config_sha256"  # the key of a part file's first line: the config its lines were written under


class PartWriter:
    """One process's append-only file of sample lines; each line is flushed to the OS as written. Its first
    line (written with the first group) names the config's fingerprint; readers skip it as a sample line."""

    def __init__(self, path: Path, fingerprint: str):
        self.path = path
        self._header = json.dumps({FINGERPRINT: fingerprint}) + "\n"
        self._handle = self._guarded(lambda: os.fdopen(create_new(path, append=True), "a", encoding="utf-8"))

    def append(self, records: list[dict[str, Any]]) -> None:
        header, self._header = self._header, ""
        text = header + "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records)
        self._guarded(lambda: (self._handle.write(text), self._handle.flush()))

    def write_timings(self, timings: dict[str, Any]) -> None:
        timings_file = _timings_file(self.path)

        def write() -> None:
            try:
                with os.fdopen(create_new(timings_file), "w", encoding="utf-8") as handle:
                    handle.write(json.dumps(timings) + "\n")
            except OSError:
                timings_file.unlink(missing_ok=True)  # never a half-written timings file
                raise
        self._guarded(write)

    def _guarded(self, write: Callable[[], Any]) -> Any:
        """A write into parts/: a full disk (or a link planted there) is one line; what was flushed is kept."""
        try:
            return write()
        except OSError as exc:
            raise InputError(f"cannot write ({exc.strerror}); the groups finished so far are kept: free some space, "
                             "then --resume continues", file=str(self.path), field="results_dir") from None

    def close(self) -> None:
        def close() -> None:
            self._handle.flush()
            os.fsync(self._handle.fileno())
            self._handle.close()
        self._guarded(close)


def done_groups(files: list[Path], parts: Path, groups: list[set[str]], stale: Collection[Path] = (),
                fingerprint: str | None = None) -> dict[int, list[dict[str, Any]]]:
    """Groups (given by their units' ids) with every unit's line present in ``files`` (the part files of all
    attempts, and a finished run's merge). A line for a unit its group does not have (an edited file) counts
    for nothing, and neither does a ``sandbox_error`` line from one of the ``stale`` files (those an earlier
    attempt wrote: the sandbox failed, not the model, so a resumed run does that group again, and waits for
    the new lines). With ``fingerprint`` (merging), a file in ``parts`` whose first line names another config
    is refused."""
    lines: dict[int, dict[str, dict[str, Any]]] = {}
    for part in files:
        earlier = part in stale
        with part.open("rb") as handle:
            if fingerprint is not None and part.parent == parts:
                _check_header(part, handle.readline(), fingerprint)
                handle.seek(0)
            for line in handle:
                record = _sample_line(line)
                if record is None:
                    continue  # torn (a process killed while writing it) or not a sample line: redone
                group = record.get("group")
                failed_sandbox = record.get("status") == "sandbox_error"
                if (earlier and failed_sandbox) or not (
                        isinstance(group, int) and 0 <= group < len(groups) and record["unit"] in groups[group]):
                    continue
                units = lines.setdefault(group, {})
                kept = units.get(record["unit"])
                if kept is None or (kept.get("status") == "sandbox_error" and not failed_sandbox):
                    units[record["unit"]] = record  # a rerun's line replaces a sandbox failure's
    return {group: list(units.values()) for group, units in lines.items() if len(units) == len(groups[group])}


class LineCounter:
    """Sample lines written so far into part files, for progress. Reads only what was appended since the last
    call, so watching a long run costs nothing like rereading its files."""

    def __init__(self) -> None:
        self._counted: dict[Path, tuple[int, int]] = {}  # part file -> (bytes read, lines seen)

    def count(self, files: list[Path]) -> int:
        for part in files:
            offset, lines = self._counted.get(part, (0, 0))
            with part.open("rb") as handle:
                handle.seek(offset)
                for block in iter(lambda: handle.read(1 << 20), b""):
                    offset += len(block)
                    lines += block.count(b"\n")
            self._counted[part] = (offset, lines)
        return sum(max(lines - 1, 0) for _, lines in self._counted.values())  # a part's first line is its header


def read_timings(files: list[Path]) -> list[dict[str, Any]]:
    """Each process's timings; a file that cannot be read as a JSON object (cut short, not UTF-8) is left
    out with a warning: it holds clocks, not results."""
    found = []
    for path in files:
        try:
            part = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:  # ValueError: not JSON, or not UTF-8
            part = exc
        if isinstance(part, dict):
            found.append(part)
        else:
            log.warning("%s: not a timings record (%s); its clocks are left out", path, str(part)[:100])
    return found


def _sample_line(line: bytes) -> dict[str, Any] | None:
    """A complete sample line, or None for a torn one (cut inside a character or before its end) or one
    lacking the fields a resume relies on."""
    record = json_object_or_none(line)
    return record if record is not None and isinstance(record.get("unit"), str) else None


def _check_header(part: Path, first: bytes, fingerprint: str) -> None:
    if not first:
        return  # nothing written yet
    header = json_object_or_none(first)
    written = header.get(FINGERPRINT) if header is not None else None
    if written != fingerprint:
        what = f"config {written[:12]}" if isinstance(written, str) else "no config fingerprint in its first line"
        raise InputError(f"was written under another config than this folder's config.yaml ({what}, the folder's "
                         f"is {fingerprint[:12]}): parts of different runs cannot be merged; nothing was changed",
                         file=str(part), field=FINGERPRINT)
