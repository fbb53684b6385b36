"""One process's part file of a run (``parts/...jsonl``) and its timings file: append-only, created by this
process (never an existing file, never through a link), and a full disk is one line that keeps what was
flushed (a line torn by it is dropped and its group redone on ``--resume``)."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from harness.errors import InputError
from harness.run_files import create_new

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
        timings_file = self.path.with_suffix(".timings.json")

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
