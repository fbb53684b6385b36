"""Programs to verdicts: each distinct job runs once per run (low-temperature samples repeat), and a
verdict cache keyed by (program, tests, sandbox config) skips jobs already judged in earlier runs.

Both are on by default and counted separately in the run's summary, so a figure of executions per
second is never confused with verdicts served from memory.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace
from typing import Any

from harness.cache_paths import cache_root
from harness.execution.verdict_cache import VerdictCache, job_key
from sandbox.pool import Execution, Job, SandboxPool


@dataclass
class ExecutionStats:
    requested: int = 0
    executed: int = 0
    duplicates: int = 0
    cache_hits: int = 0

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


class Executor:
    def __init__(self, pool: SandboxPool, dedup: bool = True, cache: VerdictCache | None = None):
        self.pool = pool
        self.dedup = dedup
        self.cache = cache
        self.stats = ExecutionStats()
        self._context: dict[str, Any] = {"python": pool.python, "layers": pool.isolation.layers}
        # Feedback mode checks attempts from the generating thread while the executing thread scores the
        # previous group: one batch at a time, since each worker owns one server.
        self._lock = threading.Lock()

    def run(self, jobs: Sequence[Job], on_done: Callable[[int], None] | None = None) -> list[Execution]:
        """Verdicts in the order of ``jobs``; ``on_done(count)`` reports progress."""
        with self._lock:
            return self._run(jobs, on_done)

    def _run(self, jobs: Sequence[Job], on_done: Callable[[int], None] | None) -> list[Execution]:
        keys = [job_key(job, self._context) for job in jobs] if (self.dedup or self.cache) else []
        results: list[Execution | None] = [None] * len(jobs)
        first_of: dict[str, int] = {}
        to_run: list[tuple[int, Job]] = []
        for index, job in enumerate(jobs):
            if self.dedup:
                if keys[index] in first_of:
                    continue
                first_of[keys[index]] = index
            cached = self.cache.get(keys[index]) if self.cache else None
            if cached is not None:
                results[index] = replace(cached, origin="cache")
                self.stats.cache_hits += 1
            else:
                to_run.append((index, job))
        ready = sum(r is not None for r in results)
        if on_done and ready:
            on_done(ready)
        for index, execution in self.pool.run_many(to_run):
            results[index] = execution
            self.stats.executed += 1
            if self.cache:  # committed as it arrives, before progress is reported: a rerun after any
                self.cache.put(keys[index], execution)  # interruption, kill -9 included, does not execute it again
            if on_done:
                on_done(1)
        if self.dedup:
            for index in range(len(jobs)):
                if results[index] is None:
                    results[index] = replace(results[first_of[keys[index]]], origin="duplicate")
                    self.stats.duplicates += 1
                    if on_done:
                        on_done(1)
        self.stats.requested += len(jobs)
        return [r for r in results if r is not None]


def make_executor(pool: SandboxPool, dedup: bool, use_cache: bool) -> Executor:
    """The run's executor: ``dedup`` runs identical jobs once; ``use_cache`` keeps verdicts across runs (in the
    harness's cache folder)."""
    cache = VerdictCache(cache_root() / "verdicts.sqlite", pool.python) if use_cache else None
    return Executor(pool, dedup=dedup, cache=cache)
