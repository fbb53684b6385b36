"""The service under load: a full queue answers 429 with Retry-After (and a client that does not retry waits
until its deadline), clients take turns for the workers, and SIGTERM answers the requests in flight before
the service stops. Order and status codes are asserted, never speed."""

from __future__ import annotations

import signal
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import requests

from serve_process import running_service

SLEEP = "import time\ntime.sleep({})\nprint('done')\n"


def _run_code(url: str, code: str, client: str = "", deadline: float | None = None) -> requests.Response:
    headers = {"X-Client-Id": client} if client else {}
    if deadline is not None:
        headers["X-Deadline-Seconds"] = str(deadline)
    return requests.post(url + "/run_code", json={"code": code, "language": "python"}, headers=headers, timeout=120)


def _wait_for_depth(url: str, depth: int) -> None:
    for _ in range(200):
        if requests.get(url + "/health", timeout=10).json()["queue_depth"] >= depth:
            return
        time.sleep(0.05)
    raise AssertionError(f"the queue never held {depth} jobs")


def test_a_full_queue_answers_429_with_retry_after_and_run_code_waits_until_its_deadline():
    core = {"suite": "core", "samples": [{"task_id": "core/he-is-anagram", "completion": "    return True\n"}]}
    with running_service("--workers", "1", "--queue", "1") as (url, _), ThreadPoolExecutor(2) as pool:
        assert requests.post(url + "/verify", json=core, timeout=120).status_code == 200  # the suite loaded
        two = {**core, "samples": [{"task_id": "core/he-is-anagram", "completion": f"    return {v}\n"}
                                   for v in ("False", "None")]}  # neither in the verdict cache
        too_many = requests.post(url + "/verify", json=two, timeout=60)
        assert too_many.status_code == 413 and "more than the queue holds" in too_many.json()["error"]
        running = pool.submit(_run_code, url, SLEEP.format(3))
        time.sleep(0.5)  # it holds the only worker
        queued = pool.submit(_run_code, url, SLEEP.format(0))
        _wait_for_depth(url, 1)
        refused = requests.post(url + "/verify", json={**two, "samples": two["samples"][:1]}, timeout=60)
        assert refused.status_code == 429 and int(refused.headers["Retry-After"]) >= 1
        waited = _run_code(url, "print(1)\n", deadline=0.5)  # SandboxFusion's client waits rather than gets 429 ...
        assert waited.status_code == 429  # ... until its deadline
        assert running.result().json()["run_result"]["stdout"] == "done\n"
        assert queued.result().json()["run_result"]["stdout"] == "done\n"
        assert _run_code(url, "print(1)\n").json()["run_result"]["stdout"] == "1\n"
        metrics = requests.get(url + "/metrics", timeout=10).text
        assert 'serve_rejected_total{reason="queue_full"} 2' in metrics


def test_a_client_flooding_the_queue_cannot_starve_another():
    with running_service("--workers", "1") as (url, _), ThreadPoolExecutor(24) as pool:
        finished: list[str] = []
        lock = threading.Lock()

        def call(client: str) -> None:
            assert _run_code(url, SLEEP.format(0.1), client=client).status_code == 200
            with lock:
                finished.append(client)

        flood = [pool.submit(call, "flooder") for _ in range(20)]
        _wait_for_depth(url, 10)
        other = pool.submit(call, "other")
        for future in flood + [other]:
            future.result()
        # Its one job goes after at most the flooder's job in progress and the one next in turn.
        assert finished.index("other") <= 12, finished


def test_sigterm_answers_the_requests_in_flight_then_stops():
    with running_service("--workers", "1") as (url, proc), ThreadPoolExecutor(3) as pool:
        calls = [pool.submit(_run_code, url, SLEEP.format(1)) for _ in range(3)]
        _wait_for_depth(url, 1)
        proc.send_signal(signal.SIGTERM)
        assert [c.result().json()["run_result"]["stdout"] for c in calls] == ["done\n"] * 3
        assert proc.wait(timeout=60) == 0


def test_a_stopped_server_is_ended_and_its_job_answered_by_a_fresh_one():
    import os

    from harness.serve.jobs.process_tree import descendants

    with running_service("--workers", "1") as (url, proc):
        assert _run_code(url, "print(1)\n").status_code == 200  # the worker's server is up
        for pid in descendants(proc.pid)[1:]:
            os.kill(pid, signal.SIGSTOP)  # never answers again
        reply = requests.post(url + "/run_code", json={"code": "print(6 * 7)", "language": "python",
                                                       "run_timeout": 1}, timeout=120)
        assert reply.json()["run_result"]["stdout"] == "42\n"
        metrics = requests.get(url + "/metrics", timeout=10).text
        assert "serve_workers_wedged_total 1" in metrics and "serve_workers_replaced_total 1" in metrics
