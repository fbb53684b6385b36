"""A run's folder while it is being written (``run``'s and ``evaluate``'s): the lock, the per-process part
files, resume and merge, and the results (``samples.jsonl``, ``summary.json``).

Every process appends the sample lines of each finished batch group to its own part file
(``parts/rank<r>-<token>.jsonl``, ``parts/shard<i>of<N>-rank<r>-<token>.jsonl`` for a shard; its first line
names the config's fingerprint) and flushes it. A group counts as done only when all of its units'
lines are there, so a process killed mid-group loses only that group, which is redone on resume. At the
end rank 0 merges the done groups into ``samples.jsonl`` in canonical order, whatever the number of
processes and however many attempts it took, and removes the parts.
"""

from __future__ import annotations

import hashlib
import json
import os
import uuid
from collections.abc import Callable, Collection
from pathlib import Path
from typing import Any

import yaml

from harness.runs.folder import claim as run_folder
from harness.config import SHARD_COUNT, RunConfig
from harness.errors import InputError
from harness.jsonl import json_object_or_none
from harness.run_files import PARTS, create_new, refuse_tampering, write_atomically
from harness.runs.folder.parts import FINGERPRINT, PartWriter
from harness.runs.folder.fingerprints import INPUTS, changed_input
from harness.runs.launch.shards import Shard
from harness.suites.yaml_input import load_yaml_file
from sandbox.isolation import LEGACY_MODES

# Options that may change between an interrupted run and its resumption: they do not change results.
OPERATIONAL_OPTIONS = {"workers", "device", "device_map", "base_url", "concurrency", "request_timeout", "max_retries",
                       "api_key_env", "results_dir", "run_name", "overwrite", "resume", "dedup", "verdict_cache",
                       "shard", "merge_when_complete"}


class RunDirectory:
    def __init__(self, directory: Path):
        self.directory = directory
        self.parts = directory / PARTS
        self._lock: run_folder.FolderLock | None = None
        self._shard_lock: run_folder.ShardLock | None = None
        self._counted: dict[Path, tuple[int, int]] = {}  # part file -> (bytes read, lines seen)

    def prepare(self, config: RunConfig, inputs: dict[str, str | None] | None = None) -> None:
        """Rank 0, before any work: refuse a busy or incompatible folder, then lock it for this run (see
        ``harness.runs.folder.claim`` for what may be reused or replaced). ``inputs`` (see ``harness.runs.folder.fingerprints``)
        is recorded with the options and checked on resume."""
        self._lock = run_folder.claim(self.directory, overwrite=config.overwrite, resume=config.resume)
        try:
            existing = self.directory / "config.yaml"
            if config.resume and existing.exists():
                self._check_resumable(existing, config, inputs or {})
            self.parts.mkdir(exist_ok=True)
            self._replace_atomically(existing, {**config.as_dict(), INPUTS: inputs or {}})
        except BaseException:
            self._lock.withdraw()
            self._lock = None
            raise

    def claim(self, overwrite: bool) -> None:
        """``evaluate``: lock a new folder (or, with ``overwrite``, a finished one) for results that are written
        whole at the end (``write_samples``, ``write_summary``, ``finish``)."""
        self._lock = run_folder.claim(self.directory, overwrite=overwrite, resume=None)  # evaluate has no --resume

    def prepare_shard(self, config: RunConfig, inputs: dict[str, str | None], shard: Shard) -> None:
        """A shard's rank 0, before any work: the folder's shared lock and this shard's own lock; the first
        shard to arrive records the config (atomically), later ones must match it, and the number of shards
        is the folder's until a merge."""
        self._lock = run_folder.claim_shard(self.directory)
        try:
            self.parts.mkdir(exist_ok=True)
            self._shard_lock = run_folder.ShardLock(self.directory, shard.index)
            existing = self.directory / "config.yaml"
            recorded = {**config.as_dict(), INPUTS: inputs, SHARD_COUNT: shard.count}
            if not self._create_atomically(existing, recorded):
                self._check_resumable(existing, config, inputs)
                previous = self.recorded_config() or {}
                count = previous.get(SHARD_COUNT)
                if count not in (None, shard.count) and not (self.directory / "summary.json").exists():
                    raise InputError(f"this run folder is being written by {count} shards; a shard of {shard.count} "
                                     f"is refused until `run-benchmark merge {self.directory}` has merged it (or "
                                     f"use --shard i/{count})", file=str(existing), field="shard")
                if count != shard.count:
                    self._replace_atomically(existing, {**previous, SHARD_COUNT: shard.count})
        except BaseException:
            self.release_locks()
            raise

    def _create_atomically(self, path: Path, content: dict[str, Any]) -> bool:
        """Write ``path`` unless it exists, never leaving it half-written; whether this process wrote it."""
        tmp = self._write_temporary(content)
        try:
            os.link(tmp, path)
            return True
        except FileExistsError:
            return False
        finally:
            tmp.unlink()

    def _replace_atomically(self, path: Path, content: dict[str, Any]) -> None:
        self._write_temporary(content).replace(path)

    def _write_temporary(self, content: dict[str, Any]) -> Path:
        tmp = self.parts / f"config-{uuid.uuid4().hex[:12]}.yaml.tmp"
        try:
            with os.fdopen(create_new(tmp), "w", encoding="utf-8") as handle:
                yaml.safe_dump(content, handle, sort_keys=False)
                handle.flush()
                os.fsync(handle.fileno())
        except OSError as exc:
            tmp.unlink(missing_ok=True)
            raise InputError(f"cannot write ({exc.strerror}); nothing was changed", file=str(self.directory /
                             "config.yaml"), field="results_dir") from None
        return tmp

    def lock_for_merge(self) -> None:
        """The exclusive lock: no shard, run or other merge may be live while the parts are merged."""
        self._lock = run_folder.FolderLock(self.directory)

    def release_locks(self) -> None:
        """Drop this process's locks, leaving every file as it is (a refusal, or a shard that has done its share)."""
        self._drop_locks(run_folder.FolderLock.withdraw)

    def fingerprint(self) -> str:
        """The recorded config's results-relevant part (options and inputs), hashed: every part file names
        it in its first line, so parts written under another config are found before they are merged."""
        recorded = self.recorded_config() or {}
        relevant = {k: v for k, v in recorded.items() if k not in OPERATIONAL_OPTIONS and k != SHARD_COUNT}
        return hashlib.sha256(json.dumps(relevant, sort_keys=True, default=repr).encode("utf-8")).hexdigest()

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
            if name not in OPERATIONAL_OPTIONS and _current_name(name, previous.get(name)) != value:
                raise InputError(f"cannot resume: this run has {name}={value!r} but the interrupted run had "
                                 f"{previous.get(name)!r}; use the same settings or another --run-name",
                                 file=str(path), field=name)
        if changed := changed_input(previous.get(INPUTS), inputs):
            raise InputError(f"cannot resume: {changed}; its samples were scored against the old one. Use another "
                             "--run-name or --overwrite", file=str(path), field=INPUTS)

    def abandon(self) -> None:
        """The start failed before any sample: remove the folder if it holds nothing but a stub."""
        self._drop_locks(run_folder.FolderLock.abandon)

    def open_part(self, rank: int, shard: Shard | None = None) -> PartWriter:
        prefix = f"shard{shard.index}of{shard.count}-" if shard else ""
        return PartWriter(self.parts / f"{prefix}rank{rank}-{uuid.uuid4().hex[:12]}.jsonl", self.fingerprint())

    def sample_files(self) -> list[Path]:
        """Every file holding sample lines: the part files of all attempts, and a finished run's merge."""
        merged = self.directory / "samples.jsonl"
        return sorted(self.parts.glob("*.jsonl")) + ([merged] if merged.exists() else [])

    def done_groups(self, groups: list[set[str]], stale: Collection[Path] = (),
                    fingerprint: str | None = None) -> dict[int, list[dict[str, Any]]]:
        """Groups (given by their units' ids) with every unit's line present, from all part files of all
        attempts. A line for a unit its group does not have (an edited file) counts for nothing, and
        neither does a ``sandbox_error`` line from one of the ``stale`` files (those an earlier attempt
        wrote: the sandbox failed, not the model, so a resumed run does that group again, and waits for
        the new lines). With ``fingerprint`` (merging), a part file whose first line names another config
        is refused."""
        lines: dict[int, dict[str, dict[str, Any]]] = {}
        for part in self.sample_files():
            earlier = part in stale
            with part.open("rb") as handle:
                if fingerprint is not None and part.parent == self.parts:
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

    def count_lines(self, shard: Shard | None = None) -> int:
        """Sample lines written so far by every process (of ``shard``, if given), for progress. Reads only what was
        appended since the last call, so watching a long run costs nothing like rereading its files."""
        for part in self.parts.glob(f"shard{shard.index}of{shard.count}-*.jsonl" if shard else "*.jsonl"):
            offset, lines = self._counted.get(part, (0, 0))
            with part.open("rb") as handle:
                handle.seek(offset)
                for block in iter(lambda: handle.read(1 << 20), b""):
                    offset += len(block)
                    lines += block.count(b"\n")
            self._counted[part] = (offset, lines)
        return sum(max(lines - 1, 0) for _, lines in self._counted.values())  # a part's first line is its header

    def write_samples(self, records: list[dict[str, Any]], keep_note: str = "") -> None:
        """Atomically (see ``write_atomically``); on a full disk, one line (``keep_note``: what is kept)."""
        lines = (json.dumps(record, ensure_ascii=False) + "\n" for record in records)
        write_atomically(self.directory / "samples.jsonl", lines, "results_dir", keep_note)

    def write_summary(self, summary: dict[str, Any], keep_note: str = "") -> None:
        """Atomically: a crash never leaves a half-written summary."""
        text = json.dumps(summary, indent=2, ensure_ascii=False, default=str) + "\n"
        write_atomically(self.directory / "summary.json", text, "results_dir", keep_note)

    def finished_already(self, config: RunConfig, inputs: dict[str, str | None], members: list[set[str]],
                         scope: list[int], shard: bool) -> bool:
        """Whether a resumed run or a (requeued) shard finds its work done in a finished run's results: then it
        must change nothing (its empty timings would replace the run's). A run with other settings is refused
        as a resume is; groups with a ``sandbox_error`` sample are not done. A plain run checks under the
        folder's lock (refused while another process holds it, as before), which it then drops; a shard reads
        without one (taking the shared lock would leave its file behind)."""
        existing = self.directory / "config.yaml"
        if not (self.directory / "summary.json").is_file() or not existing.is_file():
            return False
        refuse_tampering(self.directory)
        probe = None if shard else run_folder.FolderLock(self.directory)
        try:
            self._check_resumable(existing, config, inputs)
            done = self.done_groups(members, stale=set(self.sample_files()))
        finally:
            if probe is not None:
                probe.withdraw()
        return all(group in done for group in scope)

    def finish(self) -> None:
        """After the merge: the part files are redundant with ``samples.jsonl``; drop them (only them: a file
        of the user's there stays) and the lock."""
        run_folder.remove_harness_files(self.directory, keep=tuple(run_folder.HARNESS_FILES - {PARTS}))
        self._drop_locks(run_folder.FolderLock.release)

    def _drop_locks(self, end_folder_lock: Callable[[run_folder.FolderLock], None]) -> None:
        """The shard lock released, then the folder lock ended as the caller says (released, withdrawn, or
        abandoned with the folder's stub)."""
        if self._shard_lock is not None:
            self._shard_lock.release()
            self._shard_lock = None
        if self._lock is not None:
            end_folder_lock(self._lock)
            self._lock = None


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


def _current_name(option: str, value: Any) -> Any:
    """A value an older run recorded under the name it had then (``sandbox: strict`` is now ``full``;
    ``feedback: none`` is now recorded as no feedback, None), or did not record (runs before ``infilling_mode``
    were all PSM)."""
    if option == "feedback" and value == "none":
        return None
    if option == "infilling_mode" and value is None:
        return "psm"
    return LEGACY_MODES.get(value, value) if option == "sandbox" and isinstance(value, str) else value
