"""A persistent cache of sandbox verdicts, keyed by everything that decides a verdict.

The key hashes the job (program, tests or expected value, scorer, limits), the interpreter that runs
it, the isolation layers in force and the execution server's own source, so a change to any of them
misses the cache. Only verdicts a rerun would repeat are stored: passes and ordinary failures, never
timeouts, kills or sandbox errors, which depend on the machine's load.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from dataclasses import asdict
from pathlib import Path
from typing import Any

from sandbox.pool import Execution, Job

CACHEABLE_STATUSES = frozenset({"passed", "failed", "error", "syntax_error"})
_SERVER_SOURCE = (Path(__file__).resolve().parent.parent / "sandbox" / "server.py").read_bytes()


def job_key(job: Job, context: dict[str, Any]) -> str:
    """A stable hash of the job and the sandbox context (interpreter, isolation layers, server code)."""
    digest = hashlib.sha256()
    digest.update(json.dumps({"job": asdict(job), "context": context}, sort_keys=True, default=str).encode())
    digest.update(_SERVER_SOURCE)
    return digest.hexdigest()


class VerdictCache:
    """SQLite-backed; safe to share between processes (shards) of one machine."""

    def __init__(self, path: Path):
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._db = sqlite3.connect(str(path), timeout=60, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("CREATE TABLE IF NOT EXISTS verdicts (key TEXT PRIMARY KEY, execution TEXT NOT NULL)")
        self._db.commit()

    def get(self, key: str) -> Execution | None:
        row = self._db.execute("SELECT execution FROM verdicts WHERE key = ?", (key,)).fetchone()
        return Execution(**json.loads(row[0])) if row else None

    def put_many(self, items: list[tuple[str, Execution]]) -> None:
        rows = [(key, json.dumps(asdict(e))) for key, e in items if e.status in CACHEABLE_STATUSES]
        if rows:
            with self._db:
                self._db.executemany("INSERT OR REPLACE INTO verdicts VALUES (?, ?)", rows)

    def close(self) -> None:
        self._db.close()
