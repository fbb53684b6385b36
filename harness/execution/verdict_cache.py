"""A persistent cache of sandbox verdicts, keyed by everything that decides a verdict.

A key hashes the job (program, tests or expected value, scorer, limits) and the sandbox context (isolation
layers), inside a namespace made of the harness's version, the code that decides verdicts (every module of the
execution server and the scorers' table), the sandbox interpreter's fingerprint (its version and installed
packages) and the fields a verdict is stored as, so a change to any of them misses the cache.
Only verdicts a rerun would repeat are stored: passes and ordinary failures, never timeouts, kills or
sandbox errors, which depend on the machine's load. Once its folder exists, a cache never stops a command nor
costs it a result: a file that is not a database is moved aside (with a warning) and started afresh, and a
cache that cannot be opened or written (a read-only or full disk, a lock held for over a minute) is left alone
with a warning: the command runs on without it. A cache folder that cannot be created is a setting to fix
(``HARNESS_CACHE``): an input error.
"""

from __future__ import annotations

import hashlib
import json
import logging
import sqlite3
import time
from dataclasses import asdict, fields
from pathlib import Path
from typing import Any

import harness
from harness.errors import InputError
from sandbox.bytecode import deciding_code_sha256
from sandbox.isolation import interpreter_fingerprint
from sandbox.pool import Execution, Job

log = logging.getLogger(__name__)

CACHEABLE_STATUSES = frozenset({"passed", "failed", "error", "syntax_error"})
# The code that decides a verdict: every module of the execution server and the scorers' table.
_DECIDING_CODE = deciding_code_sha256()


def job_key(job: Job, context: dict[str, Any]) -> str:
    """A stable hash of the job and the sandbox context (interpreter path, isolation layers): identical
    programs of one run share a key; across runs the cache adds its namespace."""
    return hashlib.sha256(json.dumps({"job": asdict(job), "context": context}, sort_keys=True,
                                     default=str).encode()).hexdigest()


class VerdictCache:
    """SQLite-backed; safe to share between processes (shards) of one machine."""

    def __init__(self, path: Path, python: str):
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise InputError(f"cannot create the cache folder ({exc.strerror}); set HARNESS_CACHE to a folder "
                             "or pass --no-verdict-cache", file=str(path.parent), field="HARNESS_CACHE") from None
        self.path = path
        self._namespace = hashlib.sha256(json.dumps(
            [harness.__version__, _DECIDING_CODE, interpreter_fingerprint(python),
             [field.name for field in fields(Execution)]]  # a verdict is stored as these fields
        ).encode()).hexdigest()
        self._db: sqlite3.Connection | None = None
        try:
            self._db = self._open()
        except sqlite3.OperationalError as exc:  # read-only, full, locked: a sound file that is kept as it is
            self._give_up(exc)
        except sqlite3.DatabaseError as exc:  # not a database, or a malformed one
            self._start_afresh(exc)

    def _start_afresh(self, error: sqlite3.DatabaseError) -> None:
        aside = self.path.with_name(f"{self.path.name}.corrupt-{time.strftime('%Y%m%d-%H%M%S')}")
        log.warning("verdict cache %s is unreadable (%s): moved to %s, starting a new one", self.path, error, aside)
        try:
            self.path.replace(aside)
            for suffix in ("-wal", "-shm"):
                self.path.with_name(self.path.name + suffix).unlink(missing_ok=True)
            self._db = self._open()
        except (OSError, sqlite3.Error) as exc:
            self._give_up(exc)

    def _give_up(self, error: Exception) -> None:
        """Stop using the cache for the rest of this command, with one warning: a verdict it can neither
        read nor store is executed, which costs time, never a result."""
        log.warning("verdict cache %s: %s; this command runs on without it (its verdicts are not cached)",
                    self.path, getattr(error, "strerror", None) or error)
        if self._db is not None:
            try:
                self._db.close()
            except sqlite3.Error:
                pass
        self._db = None

    def _open(self) -> sqlite3.Connection:
        db = sqlite3.connect(str(self.path), timeout=60, check_same_thread=False)
        try:
            db.execute("PRAGMA journal_mode=WAL")
            # Each verdict is committed as it finishes: in WAL mode NORMAL survives any crash of this process
            # (kill -9) without an fsync per commit; only a power cut may lose the last few.
            db.execute("PRAGMA synchronous=NORMAL")
            db.execute("CREATE TABLE IF NOT EXISTS verdicts (key TEXT PRIMARY KEY, execution TEXT NOT NULL)")
            db.execute("SELECT count(*) FROM verdicts WHERE key = ''").fetchone()
            db.commit()
        except sqlite3.DatabaseError:
            db.close()
            raise
        return db

    def _scoped(self, key: str) -> str:
        return hashlib.sha256((self._namespace + key).encode()).hexdigest()

    def get(self, key: str) -> Execution | None:
        if self._db is None:
            return None
        try:
            row = self._db.execute("SELECT execution FROM verdicts WHERE key = ?", (self._scoped(key),)).fetchone()
        except sqlite3.Error as exc:
            self._give_up(exc)
            return None
        if row is None:
            return None
        try:
            return Execution(**json.loads(row[0]))
        except (TypeError, ValueError):  # a row this version cannot read is a miss: the job runs again
            return None

    def put(self, key: str, execution: Execution) -> None:
        if self._db is None or execution.status not in CACHEABLE_STATUSES:
            return
        try:
            with self._db:
                self._db.execute("INSERT OR REPLACE INTO verdicts VALUES (?, ?)",
                                 (self._scoped(key), json.dumps(asdict(execution))))
        except sqlite3.Error as exc:  # the disk filled up, or the file became unwritable
            self._give_up(exc)

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
