"""A run's folder while it is being written: the lock, the per-process part files, resume and merge.

Every process appends the sample lines of each finished batch group to its own part file
(``parts/rank<r>-<token>.jsonl``) and flushes it. A group counts as done only when all of its units'
lines are there, so a process killed mid-group loses only that group, which is redone on resume. At the
end rank 0 merges the done groups into ``samples.jsonl`` in canonical order, whatever the number of
processes and however many attempts it took, and removes the parts.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from collections.abc import Collection
from pathlib import Path
from typing import Any

import yaml

from harness import run_folder
from harness.config import RunConfig
from harness.errors import InputError
from harness.fingerprints import INPUTS, changed_input
from harness.yaml_input import load_yaml_file

PARTS = "parts"
# Options that may change between an interrupted run and its resumption: they do not change results.
OPERATIONAL_OPTIONS = {"workers", "device", "device_map", "base_url", "concurrency", "request_timeout", "max_retries",
                       "api_key_env", "results_dir", "run_name", "overwrite", "resume", "dedup", "verdict_cache"}


class RunDirectory:
    def __init__(self, directory: Path):
        self.directory = directory
        self.parts = directory / PARTS
        self._lock: run_folder.FolderLock | None = None
        self._counted: dict[Path, tuple[int, int]] = {}  # part file -> (bytes read, lines seen)

    def prepare(self, config: RunConfig, inputs: dict[str, str | None] | None = None) -> None:
        """Rank 0, before any work: refuse a busy or incompatible folder, then lock it for this run (see
        ``harness.run_folder`` for what may be reused or replaced). ``inputs`` (see ``harness.fingerprints``)
        is recorded with the options and checked on resume."""
        self._lock = run_folder.claim(self.directory, overwrite=config.overwrite, resume=config.resume)
        try:
            existing = self.directory / "config.yaml"
            if config.resume and existing.exists():
                self._check_resumable(existing, config, inputs or {})
            self.parts.mkdir(exist_ok=True)
            with existing.open("w", encoding="utf-8") as handle:
                yaml.safe_dump({**config.as_dict(), INPUTS: inputs or {}}, handle, sort_keys=False)
        except BaseException:
            self._lock.withdraw()
            self._lock = None
            raise

    def recorded_config(self) -> dict[str, Any] | None:
        """The settings an interrupted run in this folder recorded, if any (before ``prepare``)."""
        path = self.directory / "config.yaml"
        if not path.is_file():
            return None
        previous = load_yaml_file(path)
        if not isinstance(previous, dict):
            raise InputError("cannot read the interrupted run's config (not a mapping)", file=str(path))
        return previous

    def _check_resumable(self, path: Path, config: RunConfig, inputs: dict[str, str | None]) -> None:
        previous = self.recorded_config() or {}
        current = config.as_dict()
        for name, value in current.items():
            if name not in OPERATIONAL_OPTIONS and previous.get(name) != value:
                raise InputError(f"cannot resume: this run has {name}={value!r} but the interrupted run had "
                                 f"{previous.get(name)!r}; use the same settings or another --run-name",
                                 file=str(path), field=name)
        if changed := changed_input(previous.get(INPUTS), inputs):
            raise InputError(f"cannot resume: {changed}; its samples were scored against the old one. Use another "
                             "--run-name or --overwrite", file=str(path), field=INPUTS)

    def abandon(self) -> None:
        """The start failed before any sample: remove the folder if it holds nothing but a stub."""
        if self._lock is not None:
            self._lock.abandon()
            self._lock = None

    def open_part(self, rank: int) -> "PartWriter":
        return PartWriter(self.parts / f"rank{rank}-{uuid.uuid4().hex[:12]}.jsonl")

    def sample_files(self) -> list[Path]:
        """Every file holding sample lines: the part files of all attempts, and a finished run's merge."""
        merged = self.directory / "samples.jsonl"
        return sorted(self.parts.glob("*.jsonl")) + ([merged] if merged.exists() else [])

    def done_groups(self, groups: list[set[str]], stale: Collection[Path] = ()) -> dict[int, list[dict[str, Any]]]:
        """Groups (given by their units' ids) with every unit's line present, from all part files of all
        attempts. A line for a unit its group does not have (an edited file) counts for nothing, and
        neither does a ``sandbox_error`` line from one of the ``stale`` files (those an earlier attempt
        wrote: the sandbox failed, not the model, so a resumed run does that group again, and waits for
        the new lines)."""
        lines: dict[int, dict[str, dict[str, Any]]] = {}
        for part in self.sample_files():
            earlier = part in stale
            with part.open("rb") as handle:
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

    def count_lines(self) -> int:
        """Sample lines written so far by every process (for progress). Reads only what was appended
        since the last call, so watching a long run costs nothing like rereading its files."""
        for part in self.parts.glob("*.jsonl"):
            offset, lines = self._counted.get(part, (0, 0))
            with part.open("rb") as handle:
                handle.seek(offset)
                for block in iter(lambda: handle.read(1 << 20), b""):
                    offset += len(block)
                    lines += block.count(b"\n")
            self._counted[part] = (offset, lines)
        return sum(lines for _, lines in self._counted.values())

    def write_samples(self, records: list[dict[str, Any]]) -> None:
        target = self.directory / "samples.jsonl"
        tmp = target.with_suffix(".jsonl.tmp")
        with tmp.open("w", encoding="utf-8") as handle:
            for record in records:
                handle.write(json.dumps(record, ensure_ascii=False) + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        tmp.replace(target)

    def finish(self) -> None:
        """After the merge: the part files are redundant with ``samples.jsonl``; drop them and the lock."""
        shutil.rmtree(self.parts, ignore_errors=True)
        if self._lock is not None:
            self._lock.release()
            self._lock = None


def _sample_line(line: bytes) -> dict[str, Any] | None:
    """A complete sample line, or None for a torn one (cut inside a character or before its end) or one
    lacking the fields a resume relies on."""
    try:
        record = json.loads(line.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
        return None
    if not isinstance(record, dict) or not isinstance(record.get("unit"), str):
        return None
    return record


class PartWriter:
    """One process's append-only file of sample lines; each line is flushed to the OS as written."""

    def __init__(self, path: Path):
        self.path = path
        self._handle = path.open("a", encoding="utf-8")

    def append(self, records: list[dict[str, Any]]) -> None:
        self._handle.write("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records))
        self._handle.flush()

    def write_timings(self, timings: dict[str, Any]) -> None:
        self.path.with_suffix(".timings.json").write_text(json.dumps(timings) + "\n", encoding="utf-8")

    def close(self) -> None:
        self._handle.flush()
        os.fsync(self._handle.fileno())
        self._handle.close()
