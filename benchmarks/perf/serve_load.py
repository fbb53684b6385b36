"""Load on ``run-benchmark serve`` (127.0.0.1 only, bounded in requests and time) against whole-process
``run-benchmark evaluate`` on the same programs, with the same workers, deduplication and verdict cache off on
both sides.

The programs are HumanEval's canonical solutions, each made distinct by a trailing comment carrying its
request number, so every verdict must be ``passed``. ``--clients`` threads (default 64) each send one
program per ``/verify`` request, with their own ``X-Client-Id``, for ``--duration`` seconds or until
``--max-requests`` have been sent; a 429 is counted and retried after its ``Retry-After`` (at most 1 s).
Printed: programs/s of both and their ratio, p50/p99 request latency, 429s, and the proof that nothing was
lost or answered twice (every request number answered exactly once, with its own task's verdict). With
``--chaos`` a second round kills one sandbox server with SIGKILL and stops another with SIGSTOP a third of
the way in, while one more client sends test_forgery's hostile programs to /run_code: every request must
still be answered, and no verdict may be wrong.

    python benchmarks/perf/serve_load.py [--clients 64] [--duration 60] [--workers 2] [--chaos]

Goals (issue 29): service >= 80% of evaluate's programs/s at 64 clients; p99 < 2 s for single-program requests.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from harness.serve.jobs.process_tree import descendants  # noqa: E402
from serve_process import running_service  # noqa: E402

DATA = ROOT.parent / "shared" / "data" / "HumanEval.jsonl.gz"


def canonical_samples(path: Path) -> list[dict]:
    with gzip.open(path, "rt", encoding="utf-8") as handle:
        return [{"task_id": p["task_id"], "completion": p["canonical_solution"]} for p in map(json.loads, handle)]


def numbered(samples: list[dict], number: int) -> dict:
    sample = samples[number % len(samples)]
    return {**sample, "completion": sample["completion"] + f"\n# request {number}\n"}


def evaluate_rate(samples: list[dict], count: int, workers: int) -> float:
    """Programs/s of ``run-benchmark evaluate`` as a user runs it (the whole process) on ``count`` programs."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "samples.jsonl"
        path.write_text("".join(json.dumps(numbered(samples, n)) + "\n" for n in range(count)))
        started = time.monotonic()
        out = subprocess.run([sys.executable, "-m", "harness.cli", "-q", "evaluate", "--suite", "humaneval", "--data",
                              str(DATA), "--samples", str(path), "--workers", str(workers), "--no-dedup",
                              "--no-verdict-cache", "--results-dir", folder, "--run-name", "load"],
                             cwd=ROOT, capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
        elapsed = time.monotonic() - started
        if out.returncode != 0:
            raise SystemExit(f"evaluate failed: {out.stderr[-2000:]}")
    return count / elapsed


class Load:
    """The clients' shared state: request numbers handed out, answers seen, latencies, refusals."""

    def __init__(self, url: str, samples: list[dict], duration: float, max_requests: int):
        self.url, self.samples = url, samples
        self.ends = time.monotonic() + duration
        self.max_requests = max_requests
        self.lock = threading.Lock()
        self.next_number = 0
        self.answers: dict[int, int] = {}
        self.wrong: list[str] = []
        self.latencies: list[float] = []
        self.refused_429 = 0
        self.errors: list[str] = []

    def take(self) -> int | None:
        with self.lock:
            if time.monotonic() >= self.ends or self.next_number >= self.max_requests:
                return None
            self.next_number += 1
            return self.next_number - 1

    def client(self, name: str) -> None:
        import requests

        session = requests.Session()
        while (number := self.take()) is not None:
            sample = numbered(self.samples, number)
            started = time.monotonic()
            while True:
                reply = session.post(self.url + "/verify", json={"suite": "humaneval", "data": str(DATA),
                                                                 "samples": [sample]},
                                     headers={"X-Client-Id": name}, timeout=300)
                if reply.status_code != 429:
                    break
                with self.lock:
                    self.refused_429 += 1
                time.sleep(min(1.0, float(reply.headers.get("Retry-After", "1"))))
            self.record(number, sample, reply, time.monotonic() - started)

    def record(self, number: int, sample: dict, reply, seconds: float) -> None:
        with self.lock:
            self.latencies.append(seconds)
            if reply.status_code != 200:
                self.errors.append(f"request {number}: {reply.status_code} {reply.text[:200]}")
                return
            self.answers[number] = self.answers.get(number, 0) + 1
            [verdict] = reply.json()["verdicts"]
            if verdict["task_id"] != sample["task_id"] or not verdict["passed"]:
                self.wrong.append(f"request {number}: {verdict['task_id']} {verdict['status']} "
                                  f"{verdict['reason'][:120]}")


def hostile(url: str, ends: float) -> int:
    """A client sending test_forgery's tricks as scripts to /run_code until ``ends``: programs that signal every
    process they can see, rewrite the tests, patch builtins. Returns how many it sent."""
    import requests

    from test_forgery import ASSERT_TRICKS, WRONG

    programs = [template.replace("{e}", WRONG) + "\nprint(double(2))\n" for template, _ in ASSERT_TRICKS.values()]
    sent = 0
    while time.monotonic() < ends:
        requests.post(url + "/run_code", json={"code": programs[sent % len(programs)], "language": "python",
                                               "run_timeout": 5}, headers={"X-Client-Id": "hostile"}, timeout=300)
        sent += 1
    return sent


def chaos(serve_pid: int, at: float) -> None:
    """A third of the way in: SIGKILL one sandbox server's processes, SIGSTOP another's."""
    time.sleep(at)
    servers = [pid for pid in descendants(serve_pid) if pid != serve_pid and _parent(pid) == serve_pid]
    if len(servers) < 2:
        print(f"chaos: only {len(servers)} server(s) found, needs 2 workers", file=sys.stderr)
        return
    for pid in reversed(descendants(servers[0])):
        _signal(pid, signal.SIGKILL)
    for pid in descendants(servers[1])[1:]:
        _signal(pid, signal.SIGSTOP)
    print(f"chaos: SIGKILL to server {servers[0]}'s processes, SIGSTOP to server {servers[1]}'s", file=sys.stderr)


def _parent(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            return int(stat.read().rsplit(b")", 1)[1].split()[1])
    except OSError:
        return -1


def _signal(pid: int, signum: int) -> None:
    try:
        os.kill(pid, signum)
    except OSError:
        pass


def run_round(args: argparse.Namespace, samples: list[dict], with_chaos: bool) -> dict:
    with running_service("--workers", str(args.workers), "--no-verdict-cache") as (url, proc):
        import requests

        assert requests.post(url + "/verify", json={"suite": "humaneval", "data": str(DATA),
                                                    "samples": [samples[0]]}, timeout=600).status_code == 200
        load = Load(url, samples, args.duration, args.max_requests)
        started = time.monotonic()
        with ThreadPoolExecutor(args.clients + 1) as pool:
            if with_chaos:
                threading.Thread(target=chaos, args=(proc.pid, args.duration / 3), daemon=True).start()
                hostile_sent = pool.submit(hostile, url, load.ends)
            for future in [pool.submit(load.client, f"client-{i}") for i in range(args.clients)]:
                future.result()
        elapsed = time.monotonic() - started
        metrics = requests.get(url + "/metrics", timeout=10).text
    latencies = sorted(load.latencies)
    hostile_count = hostile_sent.result() if with_chaos else 0
    sent = load.next_number
    return {"chaos": with_chaos, "sent": sent, "answered": len(load.answers), "seconds": round(elapsed, 2),
            "programs_per_second": round(len(load.answers) / elapsed, 2),
            "p50_seconds": round(statistics.median(latencies), 3) if latencies else None,
            "p99_seconds": (round(latencies[min(len(latencies) - 1, int(0.99 * len(latencies)))], 3)
                            if latencies else None),
            "429s": load.refused_429, "lost": sent - len(load.answers) - len(load.errors),
            "answered_twice": sum(1 for n in load.answers.values() if n > 1), "errors": load.errors[:5],
            "wrong_verdicts": load.wrong[:5], "workers_replaced": _metric(metrics, "serve_workers_replaced_total"),
            "hostile_programs": hostile_count}


def _metric(text: str, name: str) -> float | None:
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=64)
    parser.add_argument("--duration", type=float, default=60.0)
    parser.add_argument("--max-requests", type=int, default=20000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--evaluate-programs", type=int, default=328, help="programs for evaluate's rate")
    parser.add_argument("--chaos", action="store_true", help="also the round with SIGKILL and SIGSTOP")
    args = parser.parse_args()
    samples = canonical_samples(DATA)
    baseline = evaluate_rate(samples, args.evaluate_programs, args.workers)
    rounds = [run_round(args, samples, False)] + ([run_round(args, samples, True)] if args.chaos else [])
    for result in rounds:
        ratio = result["programs_per_second"] / baseline
        print(f"{'chaos' if result['chaos'] else 'plain'}: serve {result['programs_per_second']} programs/s vs "
              f"evaluate {baseline:.2f} ({ratio:.0%}; goal >= 80%), p50 {result['p50_seconds']} s, p99 "
              f"{result['p99_seconds']} s (goal < 2 s), 429s {result['429s']}, sent {result['sent']}, answered "
              f"{result['answered']}, lost {result['lost']}, answered twice {result['answered_twice']}, errors "
              f"{len(result['errors'])}, wrong verdicts {len(result['wrong_verdicts'])}, workers replaced "
              f"{result['workers_replaced']}, hostile programs alongside {result['hostile_programs']}")
    print(json.dumps({"evaluate_programs_per_second": round(baseline, 2), "rounds": rounds}, indent=1))


if __name__ == "__main__":
    main()
