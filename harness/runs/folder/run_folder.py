"""A run's folder while it is being written (``run``'s, ``evaluate``'s and ``merge``'s): the one class the
commands ask, over the folder's layout, claim, record and parts. No command reads or writes a file of the
folder by name; the folder is handed what it records (``config.as_dict()``), never the run configuration.

Every process appends the sample lines of each finished batch group to its own part file
(``parts/rank<r>-<token>.jsonl``, ``parts/shard<i>of<N>-rank<r>-<token>.jsonl`` for a shard; its first line
names the config's fingerprint) and flushes it. A group counts as done only when all of its units'
lines are there, so a process killed mid-group loses only that group, which is redone on resume. At the
end rank 0 merges the done groups into ``samples.jsonl`` in canonical order, whatever the number of
processes and however many attempts it took, and removes the parts.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Collection
from pathlib import Path
from typing import Any

from harness.config import SHARD_COUNT
from harness.errors import InputError
from harness.run_files import PART_FILE, PARTS, refuse_tampering, write_atomically
from harness.runs.folder import claim, parts, record
from harness.runs.folder.fingerprints import INPUTS
from harness.runs.folder.layout import Layout
from harness.runs.folder.parts import PartWriter
from harness.runs.launch.shards import Shard

Done = dict[int, list[dict[str, Any]]]  # batch group -> its sample lines, for the groups with every line present


class RunFolder:
    def __init__(self, directory: Path):
        self.directory = directory
        self.layout = Layout(directory)
        self.parts = self.layout.parts
        self._lock: claim.FolderLock | None = None
        self._shard_lock: claim.ShardLock | None = None
        self._lines = parts.LineCounter()

    @classmethod
    def at(cls, results_dir: str, name: str) -> RunFolder:
        """``results_dir/name``, after checking both (``claim.folder_for``); nothing is created yet."""
        return cls(claim.folder_for(results_dir, name))

    @property
    def config_file(self) -> Path:
        return self.layout.config

    @property
    def samples_file(self) -> Path:
        return self.layout.samples

    def start(self, recorded: dict[str, Any], inputs: dict[str, str | None], members: list[set[str]], *,
              overwrite: bool, resume: bool, shard: Shard | None) -> tuple[set[Path], Done]:
        """Rank 0, before any work: ``prepare`` (or ``prepare_shard``), then the sample files there were before
        this attempt (a sandbox failure in them is redone) and the groups already done in them."""
        if shard is None:
            self.prepare(recorded, inputs, overwrite=overwrite, resume=resume)
        else:
            self.prepare_shard(recorded, inputs, shard)
        earlier = set(self.sample_files())
        return earlier, self.done_groups(members, stale=earlier)

    def prepare(self, recorded: dict[str, Any], inputs: dict[str, str | None] | None = None, *,
                overwrite: bool = False, resume: bool = False) -> None:
        """Refuse a busy or incompatible folder, then lock it for this run (see ``harness.runs.folder.claim``
        for what may be reused or replaced) and record ``recorded`` (the run's options) with ``inputs`` (see
        ``harness.runs.folder.fingerprints``), which a resume checks."""
        self._lock = claim.claim(self.directory, overwrite=overwrite, resume=resume)
        try:
            if resume and self.layout.config.exists():
                record.check_resumable(self.layout, recorded, inputs or {})
                recorded = record.as_recorded_before(self.layout, recorded)
            self.parts.mkdir(exist_ok=True)
            record.replace_atomically(self.layout, {**recorded, INPUTS: inputs or {}})
        except BaseException:
            self._lock.withdraw()
            self._lock = None
            raise

    def claim(self, overwrite: bool) -> None:
        """``evaluate``: lock a new folder (or, with ``overwrite``, a finished one) for results that are written
        whole at the end (``write_samples``, ``write_summary``, ``finish``)."""
        self._lock = claim.claim(self.directory, overwrite=overwrite, resume=None)  # evaluate has no --resume

    def prepare_shard(self, recorded: dict[str, Any], inputs: dict[str, str | None], shard: Shard) -> None:
        """A shard's rank 0, before any work: the folder's shared lock and this shard's own lock; the first
        shard to arrive records the config (atomically), later ones must match it, and the number of shards
        is the folder's until a merge."""
        self._lock = claim.claim_shard(self.directory)
        try:
            self.parts.mkdir(exist_ok=True)
            self._shard_lock = claim.ShardLock(self.directory, shard.index)
            if not record.create_atomically(self.layout, {**recorded, INPUTS: inputs, SHARD_COUNT: shard.count}):
                record.check_resumable(self.layout, recorded, inputs)
                previous = self.recorded_config() or {}
                count = previous.get(SHARD_COUNT)
                if count not in (None, shard.count) and not self.layout.summary.exists():
                    raise InputError(f"this run folder is being written by {count} shards; a shard of {shard.count} "
                                     f"is refused until `run-benchmark merge {self.directory}` has merged it (or "
                                     f"use --shard i/{count})", file=str(self.layout.config), field="shard")
                if count != shard.count:
                    record.replace_atomically(self.layout, {**previous, SHARD_COUNT: shard.count})
        except BaseException:
            self.release_locks()
            raise

    def lock_for_merge(self) -> None:
        """The exclusive lock: no shard, run or other merge may be live while the parts are merged."""
        self._lock = claim.FolderLock(self.directory)

    def release_locks(self) -> None:
        """Drop this process's locks, leaving every file as it is (a refusal, or a shard that has done its share)."""
        self._drop_locks(claim.FolderLock.withdraw)

    def fingerprint(self) -> str:
        """The recorded config's hash that every part file names in its first line (``record.fingerprint``)."""
        return record.fingerprint(self.recorded_config())

    def recorded_config(self) -> dict[str, Any] | None:
        """The settings an interrupted run in this folder recorded, if any (before ``prepare``)."""
        return record.recorded_config(self.layout)

    def abandon(self) -> None:
        """The start failed before any sample: remove the folder if it holds nothing but a stub."""
        self._drop_locks(claim.FolderLock.abandon)

    def open_part(self, rank: int, shard: Shard | None = None) -> PartWriter:
        return PartWriter(self.layout.part_file(_prefix(shard), rank, uuid.uuid4().hex[:12]), self.fingerprint())

    def sample_files(self) -> list[Path]:
        """Every file holding sample lines: the part files of all attempts, and a finished run's merge."""
        merged = self.layout.samples
        return self.layout.part_files() + ([merged] if merged.exists() else [])

    def done_groups(self, groups: list[set[str]], stale: Collection[Path] = (),
                    fingerprint: str | None = None) -> Done:
        """Groups with every unit's line present, from all part files of all attempts (``parts.done_groups``)."""
        return parts.done_groups(self.sample_files(), self.parts, groups, stale, fingerprint)

    def merged_groups(self, groups: list[set[str]]) -> Done:
        """What a merge takes: the done groups, refusing a part file written under another config."""
        return self.done_groups(groups, fingerprint=self.fingerprint())

    def count_lines(self, shard: Shard | None = None) -> int:
        """Sample lines written so far by every process (of ``shard``, if given), for progress."""
        return self._lines.count(self.layout.part_files(_prefix(shard)))

    def process_timings(self) -> list[dict[str, Any]]:
        """Every process's timings record (each attempt's), from the files beside the part files."""
        return parts.read_timings(self.layout.timings_files())

    def write_samples(self, records: list[dict[str, Any]], keep_note: str = "") -> None:
        """Atomically (see ``write_atomically``); on a full disk, one line (``keep_note``: what is kept)."""
        lines = (json.dumps(record, ensure_ascii=False) + "\n" for record in records)
        write_atomically(self.layout.samples, lines, "results_dir", keep_note)

    def write_summary(self, summary: dict[str, Any], keep_note: str = "") -> None:
        """Atomically: a crash never leaves a half-written summary."""
        text = json.dumps(summary, indent=2, ensure_ascii=False, default=str) + "\n"
        write_atomically(self.layout.summary, text, "results_dir", keep_note)

    def write_results(self, records: list[dict[str, Any]], summary: dict[str, Any], keep_note: str) -> None:
        """A merge's end: ``samples.jsonl``, then ``summary.json``, then the parts dropped (``finish``)."""
        self.write_samples(records, keep_note=keep_note)
        self.write_summary(summary, keep_note=keep_note)
        self.finish()

    def finished_already(self, recorded: dict[str, Any], inputs: dict[str, str | None], members: list[set[str]],
                         scope: list[int], shard: bool) -> bool:
        """Whether a resumed run or a (requeued) shard finds its work done in a finished run's results: then it
        must change nothing (its empty timings would replace the run's). A run with other settings is refused
        as a resume is; groups with a ``sandbox_error`` sample are not done. A plain run checks under the
        folder's lock (refused while another process holds it, as before), which it then drops; a shard reads
        without one (taking the shared lock would leave its file behind)."""
        if not self.layout.summary.is_file() or not self.layout.config.is_file():
            return False
        refuse_tampering(self.directory)
        probe = None if shard else claim.FolderLock(self.directory)
        try:
            record.check_resumable(self.layout, recorded, inputs)
            done = self.done_groups(members, stale=set(self.sample_files()))
        finally:
            if probe is not None:
                probe.withdraw()
        return all(group in done for group in scope)

    def mergeable(self) -> bool:
        """``merge``: whether the folder has parts to merge (False: merged already, nothing to do); refuses with
        one line a folder that is not a run's, has no config or no parts, or has been tampered with."""
        if not self.directory.is_dir() or not self.layout.marker.exists():
            raise InputError("is not a run folder that run-benchmark made", file=str(self.directory), field="run_dir")
        if not self.layout.config.is_file():
            raise InputError("has no config.yaml: no shard has started there", file=str(self.directory),
                             field="run_dir")
        refuse_tampering(self.directory, "run_dir", "give merge another RUN_DIR")
        if self.layout.summary.is_file() and not (self.parts.is_dir() and any(PART_FILE.fullmatch(p.name)
                                                                              for p in self.parts.iterdir())):
            return False  # merged (a file of the user's may be left in parts/)
        if not self.parts.is_dir():
            raise InputError("has no parts to merge (no shard has written there)", file=str(self.directory),
                             field="run_dir")
        return True

    def finish(self) -> None:
        """After the merge: the part files are redundant with ``samples.jsonl``; drop them (only them: a file
        of the user's there stays) and the lock."""
        claim.remove_harness_files(self.directory, keep=tuple(claim.HARNESS_FILES - {PARTS}))
        self._drop_locks(claim.FolderLock.release)

    def _drop_locks(self, end_folder_lock: Callable[[claim.FolderLock], None]) -> None:
        """The shard lock released, then the folder lock ended as the caller says (released, withdrawn, or
        abandoned with the folder's stub)."""
        if self._shard_lock is not None:
            self._shard_lock.release()
            self._shard_lock = None
        if self._lock is not None:
            end_folder_lock(self._lock)
            self._lock = None


def _prefix(shard: Shard | None) -> str:
    """A shard's part files' prefix (``shard<i>of<N>-``); none for a plain run."""
    return f"shard{shard.index}of{shard.count}-" if shard else ""
