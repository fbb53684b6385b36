"""The suites ``/verify`` scores against, each loaded once, with its problems' time limits.

In: a suite name (or YAML path) and optional data file, as ``evaluate`` takes them. Out: the suite and its
``TimeLimits``, measured on the references through the service's own workers the first time and kept in
the harness's cache folder, the same file ``evaluate`` reads for the same problems.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from harness.execution.problem_limits import TimeLimits
from harness.execution.time_limits import time_limits
from harness.runs.references import reference_conversations
from harness.suites.problems import Suite
from harness.suites.registry import resolve_suite
from sandbox.pool import Execution, Job, Limits

RunJobs = Callable[[list[Job]], list[Execution]]


class _WorkersAsPool:
    """What ``time_limits`` needs of a pool (its interpreter, ``run_many``), served by the service's workers:
    the pool's own ``run_many`` would share its servers with them."""

    def __init__(self, python: str, run: RunJobs):
        self.python = python
        self._run = run

    def run_many(self, jobs: Iterable[tuple[Any, Job]]) -> Iterator[tuple[Any, Execution]]:
        keyed = list(jobs)
        return iter(zip([key for key, _ in keyed], self._run([job for _, job in keyed])))


class Suites:
    def __init__(self, python: str, floor: Limits, run: RunJobs):
        self._pool = _WorkersAsPool(python, run)
        self._floor = floor
        self._loaded: dict[tuple[str, str | None], tuple[Suite, TimeLimits]] = {}
        self._lock = threading.Lock()  # one load at a time: a suite's references are measured once

    def get(self, name: str, data: str | None) -> tuple[Suite, TimeLimits]:
        """Blocking (it may run the references): call it from a thread, not the event loop."""
        with self._lock:
            key = (name, data)
            if key not in self._loaded:
                suite = resolve_suite(name, data)
                references = functools.partial(reference_conversations, program_prefix=suite.program_prefix)
                limits = time_limits(self._pool, suite.problems, self._floor, references)  # type: ignore[arg-type]
                self._loaded[key] = (suite, limits)
            return self._loaded[key]
