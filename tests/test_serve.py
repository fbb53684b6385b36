"""``run-benchmark serve``: the SandboxFusion client's own ``run_code`` against the service on 127.0.0.1, the
service's refusals of bad input (each a 4xx with one line, never a 500 or a hung connection), its flags,
``/health`` and ``/metrics``, and SIGTERM."""

from __future__ import annotations

import json
import os
import signal
import socket

import pytest
import requests
import sandbox_fusion
from sandbox_fusion import RunCodeRequest, RunStatus

from serve_process import running_service
from conftest import refused_in_process


@pytest.fixture(scope="module")
def service():
    with running_service("--workers", "2", "--max-samples", "4") as (url, proc):
        yield url, proc
    assert proc.returncode == 0, "SIGTERM must stop the service cleanly (exit 0)"


def _run(url: str, code: str, **fields) -> sandbox_fusion.RunCodeResponse:
    return sandbox_fusion.run_code(RunCodeRequest(code=code, language="python", **fields), endpoint=url,
                                   max_attempts=1, client_timeout=60)


def test_sandbox_fusion_client_passing_program_reads_stdin(service):
    result = _run(service[0], "import sys\nprint(sum(int(x) for x in sys.stdin.read().split()))\n", stdin="2 3 4\n")
    assert result.status == RunStatus.Success
    assert result.run_result.return_code == 0
    assert result.run_result.stdout == "9\n"
    assert result.run_result.execution_time is not None


@pytest.mark.parametrize("reads", ["input() + ' ' + input()", "sys.stdin.buffer.read().decode().strip()",
                                   "open(0).read().strip()", "os.read(0, 100).decode().strip()"])
def test_stdin_reaches_every_way_a_script_reads_it(service, reads):
    result = _run(service[0], f"import os, sys\nprint(repr({reads}))\n", stdin="a\nb\n")
    assert result.run_result.stdout in ("'a b'\n", "'a\\nb'\n"), result.run_result.stderr


def test_a_script_reading_stdin_keeps_its_server(service):
    """The input a script reads must not be a file in the sandbox's /tmp: making one moves the next inode number
    there, which a later program could read, so the server ends itself after such a job (kernel_counters), and
    every /run_code request would cost a server start."""
    before = _metric(service[0], "serve_workers_replaced_total")
    for number in range(6):
        result = _run(service[0], "print(int(input()) * 2)\n", stdin=f"{number}\n")
        assert result.run_result.stdout == f"{number * 2}\n"
    assert _metric(service[0], "serve_workers_replaced_total") == before


def test_sandbox_fusion_client_failing_program(service):
    result = _run(service[0], "print('before')\nraise ValueError('wrong answer')\n")
    assert result.status == RunStatus.Failed
    assert result.run_result.return_code == 1
    assert result.run_result.stdout == "before\n"
    assert "ValueError: wrong answer" in result.run_result.stderr
    exited = _run(service[0], "import sys\nprint('x')\nsys.exit(3)\n")
    assert (exited.status, exited.run_result.return_code, exited.run_result.stdout) == (RunStatus.Failed, 3, "x\n")


def test_sandbox_fusion_client_timing_out_program(service):
    result = _run(service[0], "print('started', flush=True)\nwhile True:\n    pass\n", run_timeout=1)
    assert result.status == RunStatus.Failed
    assert result.run_result.status == "TimeLimitExceeded"
    assert result.run_result.stdout == "started\n"


def test_sandbox_fusion_client_crashing_program(service):
    result = _run(service[0], "import os, signal\nprint('about to crash', flush=True)\n"
                              "os.kill(os.getpid(), signal.SIGSEGV)\n")
    assert result.status == RunStatus.Failed
    assert result.run_result.status == "Finished"
    assert result.run_result.return_code == -signal.SIGSEGV
    assert result.run_result.stdout == "about to crash\n"


@pytest.mark.parametrize("body, code, words", [
    ({"code": "print(1)", "language": "cpp"}, 400, "language 'cpp' is not supported"),
    ({"code": "print(1)", "language": "python", "files": {"a.txt": "eA=="}}, 400, "field 'files' is not supported"),
    ({"code": "print(1)", "language": "python", "run_timeout": -1}, 400, "'run_timeout' must be a number"),
    ({"code": 5, "language": "python"}, 400, "must be strings"),
    # A client may lower the memory limit, never raise it past the service's --memory-mb (4096 here): one client's
    # program touching 64 GiB would take the host's memory from every other client's programs.
    ({"code": "print(1)", "language": "python", "memory_limit_MB": 65536}, 400, "'memory_limit_MB' must be"),
    ({"code": "print(1)", "language": "python", "shell": True}, 400, "unknown field 'shell'"),
    ({"code": "x = 1\n" * 60000, "language": "python"}, 413, "program over"),
])
def test_run_code_refuses_what_it_does_not_do(service, body, code, words):
    reply = requests.post(service[0] + "/run_code", json=body, timeout=30)
    assert reply.status_code == code
    error = reply.json()["error"]
    assert words in error and "\n" not in error


@pytest.mark.parametrize("data, code, words", [
    (b"\xff\xfe{}", 400, "not UTF-8"),
    (b'{"code": "print(1)", ', 400, "malformed JSON"),
    (b"[1, 2]", 400, "must be a JSON object"),
    (b"[" * 100000 + b"]" * 100000, 400, "malformed JSON"),
    (b" " * (9 << 20), 413, "request body over"),
])
def test_bad_bodies_are_4xx_with_one_line(service, data, code, words):
    for route in ("/run_code", "/verify"):
        reply = requests.post(service[0] + route, data=data, timeout=30)
        assert reply.status_code == code, reply.text
        assert words in reply.json()["error"] and "\n" not in reply.json()["error"]


def test_too_many_samples_and_unknown_suites_are_refused(service):
    body = {"suite": "core", "samples": [{"task_id": "core/he-running-max", "completion": "    return []\n"}] * 5}
    reply = requests.post(service[0] + "/verify", json=body, timeout=30)
    assert reply.status_code == 413 and "at most 4 per request" in reply.json()["error"]
    # pass@k is worked out in the service's event loop for every k of every task: two million ks (6 MB) held every
    # client's requests for seconds (minutes with more tasks). No more ks than samples are taken (k <= n).
    body = {"suite": "core", "samples": body["samples"][:1], "k": [1, 2] * 1000000}
    reply = requests.post(service[0] + "/verify", json=body, timeout=60)
    assert reply.status_code == 413 and "field 'k'" in reply.json()["error"], reply.text
    reply = requests.post(service[0] + "/verify", json={"suite": "no-such-suite", "samples": [{}]}, timeout=60)
    assert reply.status_code == 400 and "unknown suite" in reply.json()["error"]
    reply = requests.post(service[0] + "/verify", json={"suite": "core", "samples": [{"task_id": "nope"}]}, timeout=60)
    assert reply.status_code == 400 and "no such problem" in reply.json()["error"]


def test_a_body_that_never_arrives_does_not_hang_the_service(service):
    host, port = service[0].removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as conn:
        conn.sendall(b"POST /run_code HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{")
        conn.shutdown(socket.SHUT_WR)  # the client gives up half-way
        conn.recv(1024)  # answered or closed, not left hanging (timeout=10 raises otherwise)
    assert requests.get(service[0] + "/health", timeout=10).json()["status"] == "ok"


def test_health_and_metrics(service):
    health = requests.get(service[0] + "/health", timeout=10).json()
    assert health["workers"] == 2 and "layers" in health["isolation"]
    _run(service[0], "print(1)\n")
    text = requests.get(service[0] + "/metrics", timeout=10).text
    for name in ("serve_queue_depth", "serve_jobs_per_second", 'serve_request_latency_seconds{quantile="0.99"}',
                 'serve_verdicts_total{status="passed"}', "serve_workers_replaced_total"):
        assert name in text
    assert "# TYPE serve_request_latency_seconds summary" in text


def test_a_killed_worker_is_replaced_without_failing_the_request(service):
    from harness.serve.jobs.process_tree import descendants

    pids = [p for p in descendants(service[1].pid) if p != service[1].pid]
    assert pids, "the service's sandbox servers are its descendants"
    # The program kills its own server from inside? It cannot (PID namespace); the operator's kill -9 can.
    before = _metric(service[0], "serve_workers_replaced_total")
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    for _ in range(4):
        assert _run(service[0], "print(6 * 7)\n").run_result.stdout == "42\n"
    assert _metric(service[0], "serve_workers_replaced_total") > before


def _metric(url: str, name: str) -> float:
    for line in requests.get(url + "/metrics", timeout=10).text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    raise AssertionError(f"{name} not in /metrics")


@pytest.mark.parametrize("argv, words", [
    (["serve", "--host", "0.0.0.0"], "pass --token"),
    (["serve", "--port", "0"], "--port"),
    (["serve", "--workers", "many"], "--workers"),
])
def test_bad_flags_are_one_line_exit_2(capsys, argv, words):
    assert words in refused_in_process(argv, capsys)


@pytest.mark.parametrize("flags, env", [(("--token", "s3cret"), {}), ((), {"HARNESS_SERVE_TOKEN": "s3cret"})])
def test_unauthorised_requests_are_refused_when_a_token_is_set(flags, env):
    with running_service("--workers", "1", *flags, env=env) as (url, _):
        assert requests.post(url + "/run_code", json={"code": "print(1)", "language": "python"},
                             timeout=30).status_code == 401
        reply = requests.post(url + "/run_code", json={"code": "print(1)", "language": "python"},
                              headers={"Authorization": "Bearer s3cret"}, timeout=30)
        assert reply.status_code == 200 and json.loads(reply.text)["run_result"]["stdout"] == "1\n"


def test_a_port_in_use_is_one_line_exit_2(capsys):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        line = refused_in_process(["serve", "--port", str(taken.getsockname()[1])], capsys)
    assert "cannot listen on 127.0.0.1:" in line and "--port" in line


def test_serve_without_its_extra_says_what_to_install(capsys, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "uvicorn", None)  # as if the serve extra were not installed
    assert "pip install 'program-synthesis-harness[serve]'" in refused_in_process(["serve"], capsys)
