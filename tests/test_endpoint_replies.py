"""What an OpenAI-compatible endpoint may answer, malformed or hostile, against a real HTTP server on
127.0.0.1: one error line and exit status 1 (the backend's documented failure), never a traceback, never a
``*.tmp`` left; ``Retry-After`` capped; Ctrl-C and SIGTERM stop a run waiting on retries at once."""

from __future__ import annotations

import contextlib
import io
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from conftest import ROOT, JsonEndpoint, run_cli
from harness.backends.openai_compatible.backend import EndpointError, OpenAICompatibleBackend
from harness.cli import main
from harness.errors import InputError
from harness.generation.backend import GenerationRequest, SamplingParams

RETRY_AFTER_CAP = 60.0  # seconds: docs/models.md, "Several replicas..."
GOOD = {"choices": [{"index": 0, "text": "    return 1\n"}], "usage": {"prompt_tokens": 5, "completion_tokens": 3}}
RUN = ["run", "--suite", "core", "--limit", "1", "--backend", "openai", "--model", "m", "--no-verdict-cache"]

MALFORMED = {
    "choices a string": {"choices": "abc"},
    "choices ints": {"choices": [1, 2]},
    "choices [null]": {"choices": [None]},
    "usage a string": {**GOOD, "usage": "lots"},
    "text an int": {"choices": [{"text": 5}]},
    "text a list": {"choices": [{"text": ["print(1)"]}]},
    "Infinity token counts": b'{"choices": [{"text": "x = 1"}], "usage": {"completion_tokens": Infinity}}',
}


def one_error_line(stderr: str) -> str:
    errors = [line for line in stderr.replace("\r", "\n").splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "Traceback" not in stderr, stderr[-3000:]
    return errors[0]


def no_tmp_files(folder: Path) -> None:
    assert not [p for p in folder.rglob("*") if p.name.endswith(".tmp")], list(folder.rglob("*"))


@pytest.fixture(scope="module")
def endpoint():
    with JsonEndpoint(lambda path, body: (200, GOOD)) as server:
        yield server


def serve(endpoint: JsonEndpoint, status: int, reply, extra: dict[str, str]) -> None:
    payload = reply if isinstance(reply, bytes) else json.dumps(reply).encode()  # NaN, Infinity as servers write
    endpoint.respond = lambda path, body: (status, payload, {"Content-Type": "application/json", **extra})


def in_process(argv: list[str]) -> tuple[int, str]:
    """``run-benchmark argv`` in this process (cheaper than a subprocess; a traceback fails the test as an
    exception): its exit status and standard error."""
    stderr = io.StringIO()
    with contextlib.redirect_stderr(stderr), contextlib.redirect_stdout(io.StringIO()):
        code = main(argv)
    return code, stderr.getvalue()


@pytest.mark.parametrize("reply", MALFORMED.values(), ids=MALFORMED.keys())
def test_a_malformed_reply_is_one_line(endpoint, tmp_path, reply):
    serve(endpoint, 200, reply, {})
    code, stderr = in_process(["-q", *RUN, "--base-url", endpoint.url, "--results-dir", str(tmp_path), "--run-name",
                               "m"])
    assert code == 1, stderr[-3000:]
    assert "unexpected completions reply" in one_error_line(stderr)
    no_tmp_files(tmp_path)


def test_a_retry_after_that_is_no_number_falls_back_to_the_backoff(tmp_path):
    answers = iter([(503, {"error": "busy"}, {"Retry-After": "²"})])
    with JsonEndpoint(lambda path, body: next(answers, (200, GOOD))) as server:
        result = run_cli("-q", *RUN, "--base-url", server.url, "--results-dir", str(tmp_path), "--run-name", "r")
    assert result.returncode == 0 and "Traceback" not in result.stderr, result.stderr[-3000:]


def started_run(server: JsonEndpoint, folder: Path, *flags: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "harness.cli", *RUN, "--base-url", server.url, "--results-dir",
                             str(folder), "--run-name", "wait", *flags], cwd=ROOT, stderr=subprocess.PIPE,
                            stdout=subprocess.DEVNULL, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})


def read_until(process: subprocess.Popen, needle: str, seconds: float = 60) -> str:
    """The process's stderr up to the first line containing ``needle``."""
    seen, deadline = [], time.monotonic() + seconds
    while time.monotonic() < deadline:
        line = process.stderr.readline()
        seen.append(line)
        if needle in line or not line:
            break
    return "".join(seen)


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGINT])
def test_retry_after_is_capped_and_a_signal_stops_the_wait(tmp_path, stop):
    with JsonEndpoint(lambda path, body: (503, {"error": "busy"}, {"Retry-After": "100000"})) as server:
        process = started_run(server, tmp_path, "--max-retries", "3")
        try:
            seen = read_until(process, "retry 1/3")
            assert f"in {RETRY_AFTER_CAP:.1f}s" in seen, seen
            process.send_signal(stop)
            _, rest = process.communicate(timeout=20)  # not the 60 s wait, nor the 100000 s asked for
        finally:
            process.kill()
    assert process.returncode == 128 + stop and "Traceback" not in rest, rest


def test_ctrl_c_with_an_endpoint_that_drops_every_connection_stops_at_once(tmp_path):
    with JsonEndpoint(lambda path, body: None) as server:
        process = started_run(server, tmp_path)
        try:
            seen = read_until(process, "retry 2/6")
            assert "retry 2/6" in seen, seen
            process.send_signal(signal.SIGINT)
            _, rest = process.communicate(timeout=20)
        finally:
            process.kill()
    assert process.returncode == 130 and "interrupted" in rest and "Traceback" not in rest, rest


# ------------------------------------------------------------------------------- fuzzing the replies

numbers = st.one_of(st.integers(-5, 10**30), st.floats(allow_nan=True, allow_infinity=True), st.booleans(),
                    st.none(), st.text(max_size=3))
texts = st.one_of(st.text(max_size=20), st.integers(), st.none(), st.lists(st.text(max_size=4), max_size=2),
                  st.floats(), st.dictionaries(st.text(max_size=3), st.text(max_size=3), max_size=1))
choice = st.one_of(
    st.fixed_dictionaries({}, optional={"text": texts, "index": st.one_of(st.integers(-3, 3), st.text(max_size=2),
                                                                          st.none()),
                                        "message": st.one_of(texts, st.fixed_dictionaries(
                                            {}, optional={"content": texts, "reasoning_content": texts}))}),
    texts)
usage = st.one_of(texts, st.fixed_dictionaries({}, optional={
    "prompt_tokens": numbers, "completion_tokens": numbers,
    "completion_tokens_details": st.one_of(texts, st.fixed_dictionaries({}, optional={"reasoning_tokens": numbers}))}))
replies = st.one_of(st.fixed_dictionaries({}, optional={"choices": st.one_of(st.lists(choice, max_size=3), texts),
                                                        "usage": usage}),
                    st.binary(max_size=20), st.lists(st.integers(), max_size=2))
headers = st.dictionaries(st.just("Retry-After"), st.sampled_from(["²", "-1", "nan", "inf", "1e9", "0", "",
                                                                   "Wed, 21 Oct 2015 07:28:00 GMT"]), max_size=1)
statuses = st.sampled_from([200, 200, 200, 400, 429, 503])


QUICK = dict(deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])


@settings(max_examples=300, **QUICK)
@given(status=statuses, reply=replies, extra=headers, chat=st.booleans(), n=st.integers(1, 3))
def test_the_backend_returns_well_formed_results_or_one_line(endpoint, status, reply, extra, chat, n):
    """The client alone, many replies a second: results with text and whole token counts, or an
    EndpointError / InputError of one line; nothing else escapes."""
    serve(endpoint, status, reply, extra)
    backend = OpenAICompatibleBackend([endpoint.url], "m", max_retries=1, backoff_seconds=0.001,
                                      samples_per_request=n)
    request = GenerationRequest(prompt="def f():\n", max_new_tokens=8, seed=1,
                                messages=[{"role": "user", "content": "hi"}] if chat else None)
    try:
        results = backend.generate([request] * n, SamplingParams())
    except (EndpointError, InputError) as exc:
        assert str(exc).strip() and "\n" not in str(exc), str(exc)
        return
    assert len(results) == n
    for result in results:
        assert isinstance(result.text, str) and isinstance(result.reasoning, str)
        for count in (result.prompt_tokens, result.new_tokens, result.reasoning_tokens):
            assert count is None or (type(count) is int and count >= 0), count


@settings(max_examples=8, **QUICK)
@given(status=statuses, reply=replies, extra=headers, chat=st.booleans())
@example(status=200, reply={"choices": [None]}, extra={}, chat=False)
@example(status=200, reply={"choices": [{"message": {"content": ["x"]}}]}, extra={}, chat=True)
def test_any_reply_ends_a_run_with_results_or_one_line(endpoint, status, reply, extra, chat):
    """The whole command, in this process (a traceback fails the test as an exception): exit 0 with
    well-formed samples, or one error line; no ``*.tmp`` left either way."""
    serve(endpoint, status, reply, extra)
    with tempfile.TemporaryDirectory() as folder:
        code, stderr = in_process(["-q", *RUN, "--base-url", endpoint.url, "--max-retries", "0", "--results-dir",
                                   folder, "--run-name", "f", "--prompt-format", "chat" if chat else "base"])
        no_tmp_files(Path(folder))
        if code == 0:
            samples = [json.loads(line) for line in (Path(folder) / "f" / "samples.jsonl").read_text().splitlines()]
            assert all(isinstance(turn["raw"], str) for s in samples for turn in s["turns"])
    assert code in (0, 1, 2), stderr[-3000:]
    if code:
        one_error_line(stderr)
