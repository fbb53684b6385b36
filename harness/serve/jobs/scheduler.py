"""The service's queue in front of the sandbox pool: bounded admission, per-client fairness, deadlines.

In: jobs from request handlers (``submit``), each with its client and its request's deadline. Out: each job's
``Execution``, or None when its deadline passed before a worker was free, handed to the job's ``deliver``.
One thread per pool worker runs jobs with ``SandboxPool.run_one(job, worker)``: one job at a time per server,
as the pool requires. A watchdog ends a server that stops answering (stopped by a signal, wedged): the pool
then runs that job once more on a fresh server, so no request fails for it.
"""

from __future__ import annotations

import collections
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from harness.serve.metrics import Metrics
from harness.serve.jobs.process_tree import kill_tree, stopped_below
from sandbox.pool import Execution, Job, SandboxPool

# A server replies within its job's wall limit plus its own clean-up; one silent for this much longer is wedged.
GRACE_SECONDS = 5.0


class QueueFull(Exception):
    """No room for the request's jobs: the caller answers 429 with ``retry_after`` seconds."""

    def __init__(self, retry_after: int):
        super().__init__("the queue is full")
        self.retry_after = retry_after


@dataclass
class Item:
    """One queued job. ``cancelled``: its request has gone (the client hung up): skipped, never run."""

    job: Job
    deadline: float
    deliver: Callable[[Execution | None], None]
    cancelled: bool = False


@dataclass
class _Running:
    since: float
    allowed: float


@dataclass
class _State:
    queues: "collections.OrderedDict[str, collections.deque[Item]]" = field(
        default_factory=collections.OrderedDict)
    depth: int = 0
    stopping: bool = False


class Scheduler:
    """Jobs from many clients onto ``pool.workers`` servers; the clients take turns, one job each."""

    def __init__(self, pool: SandboxPool, capacity: int, metrics: Metrics):
        self.pool = pool
        self.capacity = capacity
        self.metrics = metrics
        self._state = _State()
        self._ready = threading.Condition()
        self._running: dict[int, _Running] = {}
        self._threads = [threading.Thread(target=self._work, args=(w,), daemon=True, name=f"serve-worker-{w}")
                         for w in range(pool.workers)]
        self._threads.append(threading.Thread(target=self._watch, daemon=True, name="serve-watchdog"))
        for thread in self._threads:
            thread.start()

    @property
    def depth(self) -> int:
        return self._state.depth

    def submit(self, client: str, items: list[Item], bounded: bool = True) -> None:
        """Queue all of ``items`` or none: raises ``QueueFull`` when they do not fit. ``bounded=False``: the
        service's own jobs (a suite's references, measured once), which the requests waiting on them need."""
        with self._ready:
            state = self._state
            if state.stopping:
                raise QueueFull(retry_after=5)
            if bounded and state.depth + len(items) > self.capacity:
                raise QueueFull(retry_after=self._retry_after(len(items)))
            state.queues.setdefault(client, collections.deque()).extend(items)
            state.depth += len(items)
            self._ready.notify(len(items))

    def _retry_after(self, wanted: int) -> int:
        """Seconds until about ``wanted`` places free up, at the recent rate (at least one)."""
        rate = self.metrics.jobs_per_second()
        return max(1, min(60, int((self._state.depth + wanted - self.capacity) / rate + 1) if rate else 1))

    def _next(self) -> Item | None:
        """The next job, the clients in turn; None once stopping and empty."""
        with self._ready:
            state = self._state
            while not state.depth:
                if state.stopping:
                    return None
                self._ready.wait()
            client, queue = next(iter(state.queues.items()))
            item = queue.popleft()
            state.depth -= 1
            del state.queues[client]
            if queue:  # to the back of the line: every other client with work goes first
                state.queues[client] = queue
            return item

    def _work(self, worker: int) -> None:
        while (item := self._next()) is not None:
            if item.cancelled:
                continue
            if time.monotonic() > item.deadline:
                item.deliver(None)
                continue
            self._running[worker] = _Running(time.monotonic(), item.job.limits.wall_seconds + GRACE_SECONDS)
            try:
                execution = self.pool.run_one(item.job, worker)
            except Exception as exc:  # a server that cannot start: this job's sandbox error, never a hang
                execution = Execution(False, "sandbox_error", str(exc), None, "", "", 0.0)
            finally:
                self._running.pop(worker, None)
            self.metrics.job_done(execution.status)
            item.deliver(execution)

    def _watch(self) -> None:
        """Kill the server of a job far past its wall limit, or one stopped by a signal (it would sit out the
        whole limit); its worker's ``run_one`` gets no reply and runs the job again on a fresh server (its own
        time counted afresh)."""
        while not self._state.stopping:
            time.sleep(0.5)
            now = time.monotonic()
            for worker, running in list(self._running.items()):
                pid = self.pool.server_pid(worker)
                if pid is not None and (now - running.since > running.allowed or stopped_below(pid)):
                    kill_tree(pid, signal.SIGKILL)
                    self.metrics.wedged += 1
                    running.since = now

    def close(self) -> None:
        """Run what is queued, then stop the worker threads (SIGTERM's drain: no queued job is dropped)."""
        with self._ready:
            self._state.stopping = True
            self._ready.notify_all()
        for thread in self._threads:
            thread.join()
