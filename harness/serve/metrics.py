"""The service's counters and their Prometheus text exposition (``/metrics``).

In: events from the scheduler (a job finished, with its status) and the request handlers (a request answered,
its latency; a request refused). Out: the text format Prometheus scrapes, version 0.0.4.
"""

from __future__ import annotations

import collections
import threading
import time

WINDOW_SECONDS = 60.0  # jobs per second and latency quantiles cover the last minute
QUANTILES = (0.5, 0.9, 0.99)


class Metrics:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.verdicts: collections.Counter[str] = collections.Counter()
        self.rejected: collections.Counter[str] = collections.Counter()
        self.requests: collections.Counter[str] = collections.Counter()
        self.wedged = 0  # servers the watchdog ended
        self._done_at: collections.deque[float] = collections.deque()
        self._latencies: collections.deque[tuple[float, float]] = collections.deque()
        self._latency_sum = 0.0
        self._latency_count = 0

    def job_done(self, status: str) -> None:
        now = time.monotonic()
        with self._lock:
            self.verdicts[status] += 1
            self._done_at.append(now)
            self._trim(now)

    def request_done(self, route: str, code: int, seconds: float) -> None:
        now = time.monotonic()
        with self._lock:
            self.requests[f'{route}",code="{code}'] += 1
            self._latencies.append((now, seconds))
            self._latency_sum += seconds
            self._latency_count += 1
            self._trim(now)

    def refused(self, reason: str) -> None:
        with self._lock:
            self.rejected[reason] += 1

    def _trim(self, now: float) -> None:
        while self._done_at and now - self._done_at[0] > WINDOW_SECONDS:
            self._done_at.popleft()
        while self._latencies and now - self._latencies[0][0] > WINDOW_SECONDS:
            self._latencies.popleft()

    def jobs_per_second(self) -> float:
        with self._lock:
            self._trim(time.monotonic())
            if len(self._done_at) < 2:
                return 0.0
            span = max(self._done_at[-1] - self._done_at[0], 1e-3)
            return (len(self._done_at) - 1) / span

    def quantiles(self) -> dict[float, float]:
        with self._lock:
            values = sorted(seconds for _, seconds in self._latencies)
        if not values:
            return {q: 0.0 for q in QUANTILES}
        return {q: values[min(len(values) - 1, int(q * len(values)))] for q in QUANTILES}

    def exposition(self, queue_depth: int, workers: int, replaced: int) -> str:
        """The Prometheus text format: one ``# TYPE`` line per metric, then its samples."""
        lines: list[str] = []

        def metric(name: str, kind: str, help_text: str, samples: list[tuple[str, float]]) -> None:
            lines.extend((f"# HELP {name} {help_text}", f"# TYPE {name} {kind}"))
            lines.extend(f"{name}{labels} {_number(value)}" for labels, value in samples)

        with self._lock:
            verdicts, rejected, requests = dict(self.verdicts), dict(self.rejected), dict(self.requests)
            latency_sum, latency_count = self._latency_sum, self._latency_count
        metric("serve_queue_depth", "gauge", "Jobs waiting for a worker.", [("", queue_depth)])
        metric("serve_workers", "gauge", "Sandbox workers.", [("", workers)])
        metric("serve_jobs_per_second", "gauge", f"Jobs finished per second over the last {WINDOW_SECONDS:.0f} s.",
               [("", self.jobs_per_second())])
        metric("serve_request_latency_seconds", "summary", "Request latency, arrival to answer (last minute).",
               [(f'{{quantile="{q}"}}', v) for q, v in self.quantiles().items()]
               + [("_sum", latency_sum), ("_count", latency_count)])
        metric("serve_verdicts_total", "counter", "Jobs finished, by status.",
               [(f'{{status="{s}"}}', n) for s, n in sorted(verdicts.items())])
        metric("serve_requests_total", "counter", "Requests answered, by route and code.",
               [(f'{{route="{r}"}}', n) for r, n in sorted(requests.items())])
        metric("serve_rejected_total", "counter", "Requests refused before running, by reason.",
               [(f'{{reason="{r}"}}', n) for r, n in sorted(rejected.items())])
        metric("serve_workers_replaced_total", "counter", "Sandbox servers that died or were ended and replaced.",
               [("", replaced)])
        metric("serve_workers_wedged_total", "counter", "Servers the watchdog ended for not answering.",
               [("", self.wedged)])
        return "\n".join(lines) + "\n"


def _number(value: float) -> str:
    return repr(float(value)) if isinstance(value, float) else str(value)
