"""Where each file of a run folder is. The names themselves are ``harness.run_files``' (the commands that
must never write over a run's file, below every stage, need them too); every path into a run folder is
made here, so that no command spells a file's name."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from harness.run_files import CONFIG, HARNESS_FILES, LOCK, MARKER, PART_FILE, PARTS, SAMPLES, SUMMARY

__all__ = ["CONFIG", "HARNESS_FILES", "LOCK", "MARKER", "PART_FILE", "PARTS", "SAMPLES", "SUMMARY", "Layout"]

TIMINGS_SUFFIX = ".timings.json"  # beside each part file: its process's clocks and what it ran on


@dataclass(frozen=True)
class Layout:
    """The paths of one run folder's files."""

    directory: Path

    @property
    def marker(self) -> Path:
        return self.directory / MARKER

    @property
    def config(self) -> Path:
        return self.directory / CONFIG

    @property
    def samples(self) -> Path:
        return self.directory / SAMPLES

    @property
    def summary(self) -> Path:
        return self.directory / SUMMARY

    @property
    def parts(self) -> Path:
        return self.directory / PARTS

    def shard_lock(self, index: int) -> Path:
        return self.parts / f"shard{index}.lock"

    def part_file(self, prefix: str, rank: int, token: str) -> Path:
        return self.parts / f"{prefix}rank{rank}-{token}.jsonl"

    def part_files(self, prefix: str = "") -> list[Path]:
        """Every process's sample-line files (of one shard, with its ``prefix``)."""
        return sorted(self.parts.glob(f"{prefix}*.jsonl"))

    def timings_files(self) -> list[Path]:
        return sorted(self.parts.glob(f"*{TIMINGS_SUFFIX}"))

    def config_temporary(self, token: str) -> Path:
        """A config being recorded, renamed (or linked) into place once whole."""
        return self.parts / f"config-{token}.yaml.tmp"


def timings_file(part: Path) -> Path:
    """The timings file beside ``part``."""
    return part.with_suffix(TIMINGS_SUFFIX)
