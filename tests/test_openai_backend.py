"""The OpenAI-compatible backend against a real HTTP server on 127.0.0.1 that answers from a tiny local
model, with rate limiting and server errors to retry through, and an API key that must not leak."""

from __future__ import annotations

import itertools
import json
import threading
from pathlib import Path

import pytest

from conftest import JsonEndpoint, Reply, run_cli
from harness.backends.huggingface.backend import HuggingFaceBackend
from harness.backends.huggingface.tiny_models import tiny_model_path
from harness.generation.backend import GenerationRequest, SamplingParams
from harness.generation.truncation import CODE_STOP_SEQUENCES, END_OF_TEXT, StopRule, truncate_at_stops

SECRET = "sk-test-never-write-me-0123456789"


class TinyModelServer(JsonEndpoint):
    """``POST /v1/completions`` answered by tiny-codegen and ``POST /v1/chat/completions`` by
    tiny-llama-instruct through its chat template; the first request for every (prompt, seed) gets a 429
    and the second a 503, so every sample goes through the client's retries. Like vLLM, it honours the
    request's ``stop`` strings (the text ends before the first one) unless ``honour_stop`` is off; like
    OpenAI's API and TGI, it refuses more than 4 of them."""

    def __init__(self):
        self.backend = HuggingFaceBackend(str(tiny_model_path("tiny-codegen")), device="cpu")
        self.chat_backend = HuggingFaceBackend(str(tiny_model_path("tiny-llama-instruct")), device="cpu")
        self.lock = threading.Lock()
        self.seen: dict[str, int] = {}
        self.replies: dict[tuple[str, int], list[str]] = {}  # (prompt, seed) -> the choices' texts, in order
        self.honour_stop = True
        super().__init__(self.reply)

    @property
    def auth(self) -> set[str]:
        """The Authorization headers the requests carried."""
        return {headers.get("Authorization", "") for headers in self.headers}

    def reply(self, path: str, body: dict) -> Reply:
        chat = path == "/v1/chat/completions"
        with self.lock:
            key = (json.dumps(body.get("messages")) if chat else body["prompt"], body["seed"])
            count = self.seen.get(key, 0)
            self.seen[key] = count + 1
        if path not in ("/v1/completions", "/v1/chat/completions"):
            return 404, {"error": "no such endpoint"}
        if len(body.get("stop") or ()) > 4:
            return 400, {"error": "at most 4 stop sequences"}
        if count == 0:
            return 429, {"error": "slow down"}, {"Retry-After": "0"}
        if count == 1:
            return 503, {"error": "busy"}, {"Retry-After": "0"}
        stops = tuple(body.get("stop") or ()) if self.honour_stop else ()
        with self.lock:  # one generation at a time: the tiny model is not thread-safe
            results = (self.chat_backend if chat else self.backend).generate(
                [GenerationRequest(prompt=body.get("prompt", ""), messages=body.get("messages"),
                                   max_new_tokens=body["max_tokens"], seed=body["seed"] + i,
                                   stop=StopRule(strings=stops))
                 for i in range(body.get("n", 1))],
                SamplingParams(temperature=body["temperature"], top_p=body["top_p"]))
        for result in results:
            result.text = truncate_at_stops(result.text, stops)
        self.replies[key] = [r.text for r in results]
        choices = [{"index": i, "message": {"role": "assistant", "content": r.text}} if chat
                   else {"index": i, "text": r.text} for i, r in enumerate(results)]
        return 200, {"id": "cmpl-1", "model": body["model"], "choices": choices[::-1],
                     "usage": {"prompt_tokens": results[0].prompt_tokens,
                               "completion_tokens": sum(r.new_tokens for r in results)}}


@pytest.fixture(scope="module")
def server():
    with TinyModelServer() as instance:
        yield instance


def test_run_through_the_endpoint(server, tmp_path):
    result = run_cli("run", "--backend", "openai", "--base-url", server.url, "--model", "tiny-codegen", "--limit", "3",
                     "--num-samples", "2", "--max-new-tokens", "12", "--temperature", "0.8", "--concurrency", "4",
                     "--results-dir", str(tmp_path), "--run-name", "api", env_extra={"OPENAI_API_KEY": SECRET})
    assert result.returncode == 0, result.stderr[-3000:]
    lines = [json.loads(line) for line in (tmp_path / "api" / "samples.jsonl").read_text().splitlines()]
    assert len(lines) == 3 * 4 * 2  # three multi-turn problems, 4 test cases, 2 samples
    assert all(turn["new_tokens"] > 0 for line in lines for turn in line["turns"])
    # Every sample was retried through a 429 and a 503; the answers carried the units' seeds.
    assert server.seen and all(count == 3 for count in server.seen.values())
    assert len({r["seed"] for r in server.bodies}) >= len(lines)
    assert server.auth == {f"Bearer {SECRET}"}
    # The key reaches the server and nothing else.
    for path in (tmp_path / "api").rglob("*"):
        if path.is_file():
            assert SECRET not in path.read_text(errors="replace"), path
    assert SECRET not in result.stdout + result.stderr
    summary = json.loads((tmp_path / "api" / "summary.json").read_text())
    assert summary["model"]["backend"] == "openai" and summary["model"]["base_url"] == server.url


def test_requests_carry_the_stop_strings_and_the_harness_still_truncates(server, tmp_path):
    """A code prompt's request carries its stop sequences and a multi-turn request MTPB's exact ones (its
    line rules are the harness's alone); the server cuts there. A server that ignores ``stop`` gives the same
    programs: the harness truncates client-side too."""
    from harness.suites.registry import resolve_suite

    problems = {p.id: p for p in resolve_suite("core", None).problems}
    multi_turn = next(id for id, problem in problems.items() if problem.kind == "multi_turn")
    code_prompts = {problems[id].prompt for id in ("core/he-running-max", "core/he-roman")}
    common = ["run", "--backend", "openai", "--base-url", server.url, "--model", "tiny-codegen", "--problems",
              f"core/he-running-max,core/he-roman,{multi_turn}", "--max-new-tokens", "24",
              "--temperature", "0.8", "--results-dir", str(tmp_path)]
    before = len(server.bodies)
    honoured = run_cli(*common, "--run-name", "stop")
    assert honoured.returncode == 0, honoured.stderr[-3000:]
    sent = server.bodies[before:]
    code = [r for r in sent if r["prompt"] in code_prompts]
    assert len(CODE_STOP_SEQUENCES) > 4  # so that the fifth is left to the harness's own truncation
    assert code and all(r["stop"] == list(CODE_STOP_SEQUENCES[:4]) for r in code)
    turns = [r for r in sent if r not in code]
    assert turns and all(r["stop"] == [END_OF_TEXT, "\n\n\n"] for r in turns)
    server.honour_stop = False
    try:
        ignored = run_cli(*common, "--run-name", "no-stop")
    finally:
        server.honour_stop = True
    assert ignored.returncode == 0, ignored.stderr[-3000:]

    def samples(name):
        return [json.loads(line) for line in (tmp_path / name / "samples.jsonl").read_text().splitlines()]

    cut, uncut = samples("stop"), samples("no-stop")
    assert [s["program"] for s in cut] == [s["program"] for s in uncut]
    assert [s["status"] for s in cut] == [s["status"] for s in uncut]


def test_the_server_cuts_at_the_stop_strings_and_the_client_as_well(server):
    """The backend sends a request's stop strings; a server that honours them ends the text before the
    first one, and the text of one that does not still holds it (the harness then truncates itself)."""
    from harness.backends.openai_compatible.backend import OpenAICompatibleBackend

    backend = OpenAICompatibleBackend([server.url], "tiny-codegen", backoff_seconds=0)
    request = GenerationRequest(prompt="def add(a, b):\n", max_new_tokens=48, seed=11, stop=StopRule(strings=(" ",)))
    sampling = SamplingParams(temperature=0.8, top_p=0.95)
    [honoured] = backend.generate([request], sampling)
    server.honour_stop = False
    try:
        [ignored] = backend.generate([request], sampling)
    finally:
        server.honour_stop = True
    assert " " in ignored.text and " " not in honoured.text
    assert honoured.text == truncate_at_stops(ignored.text, (" ",))


def test_unreachable_endpoint_is_one_line(tmp_path):
    result = run_cli("run", "--backend", "openai", "--base-url", "http://127.0.0.1:9/v1", "--model", "x",
                     "--limit", "1", "--request-timeout", "2", "--max-retries", "1", "--results-dir", str(tmp_path),
                     "--run-name", "down")
    assert result.returncode == 1
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "unreachable" in errors[0] and "Traceback" not in result.stderr
    assert Path(tmp_path / "down" / "config.yaml").exists()  # what was written is kept


def test_chat_turns_through_the_chat_endpoint(server, tmp_path):
    """--prompt-format chat: every turn is a request to /chat/completions carrying the conversation so far,
    user turns alternating with the code extracted from the model's earlier replies."""
    before = len(server.bodies)
    result = run_cli("run", "--backend", "openai", "--base-url", server.url, "--model", "tiny-llama-instruct",
                     "--prompt-format", "chat", "--limit", "2", "--max-new-tokens", "16", "--temperature", "0",
                     "--results-dir", str(tmp_path), "--run-name", "chat", env_extra={"OPENAI_API_KEY": SECRET})
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads((tmp_path / "chat" / "summary.json").read_text())
    assert summary["prompt_format"] == "chat"
    lines = [json.loads(line) for line in (tmp_path / "chat" / "samples.jsonl").read_text().splitlines()]
    answered = [r for r in server.bodies[before:] if "messages" in r]
    assert answered and all("prompt" not in r for r in answered)
    received = [r["messages"] for r in answered]
    for line in lines:
        turns = line["turns"]
        # The last turn's request held every earlier exchange: the user turns alternating with the code
        # extracted from the model's replies, fenced, as the assistant's messages.
        expected = []
        for turn in turns[:-1]:
            expected += [{"role": "user", "content": turn["prompt"]},
                         {"role": "assistant", "content": f"```python\n{turn['completion']}\n```"}]
        expected.append({"role": "user", "content": turns[-1]["prompt"]})
        assert expected in received
        assert turns[0]["prompt"].startswith("Write a Python program step by step.")
        assert "[INST]" not in line["program"]  # the program is code only
    assert any(len(line["turns"]) > 1 for line in lines)


def test_several_samples_per_request(server, tmp_path):
    """--samples-per-request 3: a problem's samples share their first prompt and go out as one request with
    n=3; the choices (sent back in reverse order) land on the right samples."""
    before = len(server.bodies)
    result = run_cli("run", "--backend", "openai", "--base-url", server.url, "--model", "tiny-codegen", "--limit", "2",
                     "--num-samples", "3", "--samples-per-request", "3", "--max-new-tokens", "10", "--temperature",
                     "0.8", "--results-dir", str(tmp_path), "--run-name", "n3")
    assert result.returncode == 0, result.stderr[-3000:]
    answered = [r for r in server.bodies[before:]]
    assert any(r["n"] == 3 for r in answered) and all(r["n"] <= 3 for r in answered)
    lines = [json.loads(line) for line in (tmp_path / "n3" / "samples.jsonl").read_text().splitlines()]
    first = {}
    for line in lines:
        first.setdefault((line["task_id"], line["case"]), []).append(line["turns"][0]["raw"])
    # The three samples of a case are the server's three choices: sampled with seeds s, s+1, s+2.
    assert all(len(raws) == 3 for raws in first.values())
    shared = [server.replies[(r["prompt"], r["seed"])] for r in answered if r["n"] == 3]
    assert shared and all(texts in list(first.values()) for texts in shared)
    assert any(len(set(raws)) > 1 for raws in first.values())


def test_several_endpoints_one_stopped_mid_run_give_the_same_samples(server, tmp_path):
    """Two replicas on 127.0.0.1 answering from the same tiny model; the second is stopped after answering a
    few requests. Its requests go to the first; the samples equal a single-endpoint run's."""
    stop_after = 6
    answered = itertools.count(1)
    common = ["--backend", "openai", "--model", "tiny-codegen", "--limit", "3", "--num-samples", "2",
              "--max-new-tokens", "8", "--temperature", "0.8", "--concurrency", "4", "--max-retries", "8",
              "--results-dir", str(tmp_path)]
    with TinyModelServer() as second:
        original = second.respond

        def respond(path, body):
            if next(answered) > stop_after:  # stopped: the connection drops without an answer
                return None
            return original(path, body)

        second.respond = respond
        both = run_cli("run", *common, "--base-url", server.url, "--base-url", second.url, "--run-name", "two")
        assert both.returncode == 0, both.stderr[-3000:]
    single = run_cli("run", *common, "--base-url", server.url, "--run-name", "one")
    assert single.returncode == 0, single.stderr[-3000:]

    def samples(name):
        return [{k: v for k, v in json.loads(line).items() if k not in ("duration", "execution")}
                for line in (tmp_path / name / "samples.jsonl").read_text().splitlines()]

    assert samples("two") == samples("one")
    usage = json.loads((tmp_path / "two" / "summary.json").read_text())["timings"]["endpoints"]
    assert set(usage) == {server.url, second.url}
    assert usage[second.url]["requests"] >= stop_after and usage[second.url]["failures"] >= 1
    assert len(second.bodies) == stop_after


def test_a_file_of_endpoint_urls(server, tmp_path):
    urls = tmp_path / "urls.txt"
    urls.write_text(f"# replicas\n{server.url}\n\n")
    result = run_cli("run", "--backend", "openai", "--base-url", f"@{urls}", "--model", "tiny-codegen", "--limit", "1",
                     "--max-new-tokens", "4", "--results-dir", str(tmp_path), "--run-name", "file")
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads((tmp_path / "file" / "summary.json").read_text())
    assert summary["config"]["base_url"] == [server.url]
    missing = run_cli("run", "--backend", "openai", "--base-url", f"@{tmp_path / 'nope.txt'}", "--model", "x",
                      "--results-dir", str(tmp_path), "--run-name", "nope")
    assert missing.returncode == 2 and "nope.txt" in missing.stderr and "Traceback" not in missing.stderr


def test_a_replica_answering_html_is_set_aside_and_bad_urls_are_refused(server, tmp_path):
    """A proxy's error page from one replica is a failed attempt there, not the end of the run."""

    with JsonEndpoint(lambda path, body: (200, b"<html>502 Bad Gateway</html>")) as html:
        html_url = html.url
        result = run_cli("run", "--backend", "openai", "--base-url", html_url, "--base-url", server.url, "--model",
                         "tiny-codegen", "--limit", "1", "--max-new-tokens", "4", "--results-dir", str(tmp_path),
                         "--run-name", "mixed")
        assert result.returncode == 0, result.stderr[-3000:]
        usage = json.loads((tmp_path / "mixed" / "summary.json").read_text())["timings"]["endpoints"]
        assert usage[html_url]["failures"] >= 1 and usage[html_url]["last_error"] == "not a JSON reply"
    for bad in ("http://127.0.0.1:port/v1", "ftp://127.0.0.1/v1", "localhost:8000"):
        refused = run_cli("run", "--backend", "openai", "--base-url", bad, "--model", "m", "--results-dir",
                          str(tmp_path), "--run-name", "bad")
        assert refused.returncode == 2 and "Traceback" not in refused.stderr and "base_url" in refused.stderr, bad


def test_extra_body_reaches_every_request_and_is_recorded(server, tmp_path):
    """``--extra-body`` adds server-specific fields to every request (llama-cpp-python's server applies
    ``repeat_penalty`` 1.1 unless a request says otherwise, so greedy there needs ``{"repeat_penalty": 1.0}``);
    it is recorded with the run, and fields the harness sets itself, or text that is not a JSON object,
    are refused in one line."""
    before = len(server.bodies)
    result = run_cli("run", "--backend", "openai", "--base-url", server.url, "--model", "tiny-codegen",
                     "--problems", "core/he-roman", "--max-new-tokens", "8", "--temperature", "0",
                     "--extra-body", '{"repeat_penalty": 1.0, "top_k": 1}', "--results-dir", str(tmp_path),
                     "--run-name", "extra")
    assert result.returncode == 0, result.stderr[-3000:]
    sent = server.bodies[before:]
    assert sent and all(body["repeat_penalty"] == 1.0 and body["top_k"] == 1 for body in sent)
    assert "repeat_penalty: 1.0" in (tmp_path / "extra" / "config.yaml").read_text()
    summary = json.loads((tmp_path / "extra" / "summary.json").read_text())
    assert summary["model"]["extra_body"] == {"repeat_penalty": 1.0, "top_k": 1}
    config = tmp_path / "extra.yaml"  # a config file gives it as a mapping
    config.write_text("extra_body:\n  repeat_penalty: 1.0\n")
    before = len(server.bodies)
    mapped = run_cli("run", "--config", str(config), "--backend", "openai", "--base-url", server.url, "--model",
                     "tiny-codegen", "--problems", "core/he-roman", "--max-new-tokens", "8", "--temperature", "0",
                     "--results-dir", str(tmp_path), "--run-name", "mapped")
    assert mapped.returncode == 0, mapped.stderr[-3000:]
    assert server.bodies[before:] and all(body["repeat_penalty"] == 1.0 for body in server.bodies[before:])
    for bad, words in (('{"temperature": 1}', "temperature"), ("[1, 2]", "JSON object"), ("{oops", "JSON object"),
                       ('{"stream": true}', "stream"), ('{"a": NaN}', "NaN"),
                       ('{"a":' * 40 + "1" + "}" * 40, "levels"), ("[" * 5000, "nested")):
        refused = run_cli("run", "--backend", "openai", "--base-url", server.url, "--model", "tiny-codegen",
                          "--problems", "core/he-roman", "--extra-body", bad, "--results-dir", str(tmp_path),
                          "--run-name", "bad")
        assert refused.returncode == 2, refused.stderr[-2000:]
        last = refused.stderr.strip().splitlines()[-1]
        assert "extra_body" in last and words in last and "Traceback" not in refused.stderr
