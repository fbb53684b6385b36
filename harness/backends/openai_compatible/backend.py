"""A model behind an OpenAI-compatible endpoint (vLLM, TGI, llama.cpp's server, ...): ``/completions`` for
the base format, ``/chat/completions`` for the chat format (``--prompt-format chat``).

Requests run concurrently; 429 and 5xx answers and dropped connections are retried with exponential
backoff (honouring ``Retry-After``); every request has a timeout. By default each sample is its own request
carrying the unit's seed, so samples do not depend on batching; ``--samples-per-request N`` asks for up to
N samples of an identical prompt in one request (``n``), faster on servers that share the prompt's work,
with the first sample's seed for all of them. The API key is read from an environment variable
and never written to results or logs.
"""

from __future__ import annotations

import json
import logging
import os
import random
import threading
from typing import Any

from harness.backends.openai_compatible.endpoints import EndpointPool, check_urls, distinct
from harness.backends.openai_compatible.openai_replies import MalformedReply, results_of, retry_after
from harness.backends.spec import BackendOptions, BackendSpec, Option, integer, number
from harness.errors import InputError
from harness.generation.backend import BackendError, GenerationRequest, GenerationResult, SamplingParams

log = logging.getLogger(__name__)
RETRYABLE = {408, 409, 425, 429, 500, 502, 503, 504}
# Stop strings sent with a request: OpenAI's API and TGI (its --max-stop-sequences default) refuse more than
# 4. Sending a subset is safe: the harness truncates every reply at all of them itself.
MAX_STOP_STRINGS = 4


class EndpointError(BackendError):
    """The endpoint stays down, or answers what no OpenAI-compatible API would."""


class OpenAICompatibleBackend:
    name = "openai"
    requires_reference = False
    supports_infilling = False
    supports_chat = True
    prefers_chat = False  # the server may or may not apply a chat template: chat only when asked for

    def __init__(self, base_urls: list[str], model: str, api_key_env: str = "OPENAI_API_KEY", concurrency: int = 8,
                 timeout: float = 120.0, max_retries: int = 6, backoff_seconds: float = 1.0,
                 samples_per_request: int = 1, extra_body: dict[str, Any] | None = None):
        for url in base_urls:
            if not url.startswith(("http://", "https://")):
                raise InputError(f"{url!r} must be an http(s) URL, e.g. http://localhost:8000/v1", field="base_url")
        self.base_urls = distinct(base_urls)
        self.endpoints = EndpointPool(self.base_urls)
        self.model_id = model
        self.api_key_env = api_key_env
        self.concurrency = max(1, concurrency)
        self.timeout = timeout
        self.max_retries = max_retries
        self.backoff_seconds = backoff_seconds
        self.samples_per_request = max(1, samples_per_request)
        self.extra_body = dict(extra_body or {})

    def identity(self) -> dict[str, Any]:
        return {"backend": self.name, "model": self.model_id, "base_url": self.base_urls[0] if len(self.base_urls) == 1
                else self.base_urls, "api_key_env": self.api_key_env if os.environ.get(self.api_key_env) else None,
                **({"extra_body": self.extra_body} if self.extra_body else {})}

    def usage(self) -> dict[str, Any]:
        """Requests and failures per endpoint, for the summary's timings."""
        return {"endpoints": self.endpoints.usage()}

    def generate(self, requests: list[GenerationRequest], sampling: SamplingParams) -> list[GenerationResult]:
        shared: dict[str, list[int]] = {}
        for index, request in enumerate(requests):
            key = json.dumps([request.prompt, request.messages, request.max_new_tokens])
            shared.setdefault(key, []).append(index)
        step = self.samples_per_request
        calls = [indices[i:i + step] for indices in shared.values() for i in range(0, len(indices), step)]
        results: list[GenerationResult] = [GenerationResult(text="")] * len(requests)
        from concurrent.futures import ThreadPoolExecutor  # here, not at the top: ``registry`` reads BACKEND

        stop = threading.Event()  # set when this batch ends early: the other requests stop retrying at once
        pool = ThreadPoolExecutor(self.concurrency)
        try:
            answers = pool.map(lambda call: self._complete([requests[i] for i in call], sampling, stop), calls)
            for call, answer in zip(calls, answers):
                for index, result in zip(call, answer):
                    results[index] = result
        except BaseException:  # an error, Ctrl-C, SIGTERM: no request waits out its backoff before the run ends
            stop.set()
            pool.shutdown(wait=True, cancel_futures=True)
            raise
        pool.shutdown()
        return results

    def _complete(self, requests: list[GenerationRequest], sampling: SamplingParams,
                  stop: threading.Event) -> list[GenerationResult]:
        """One request for ``len(requests)`` samples of the same prompt."""
        request = requests[0]
        body: dict[str, Any] = {**self.extra_body, "model": self.model_id, "max_tokens": request.max_new_tokens,
                                "temperature": sampling.temperature,
                                "top_p": 1.0 if sampling.greedy else sampling.top_p,
                                "seed": request.seed % (2**31), "n": len(requests)}
        if request.stop.strings:  # the server stops there too; the harness still truncates, since servers differ
            body["stop"] = list(request.stop.strings[:MAX_STOP_STRINGS])
        chat = request.messages is not None
        if chat:
            body["messages"] = request.messages
        else:
            body["prompt"] = request.prompt
        reply = self._post("/chat/completions" if chat else "/completions", body, stop)
        try:
            results = results_of(reply, chat)
        except MalformedReply as exc:
            raise EndpointError(f"unexpected {'chat ' if chat else ''}completions reply: {exc}") from None
        if len(results) != len(requests):
            hint = "; this server does not support n, use --samples-per-request 1" if len(requests) > 1 else ""
            raise EndpointError(f"the endpoint answered {len(results)} choices for n={len(requests)}{hint}")
        return results

    def _post(self, path: str, body: dict[str, Any], stop: threading.Event) -> dict[str, Any]:
        """POST ``body`` to the least-loaded healthy endpoint. A failed attempt goes at once to another
        endpoint this request has not failed on; when there is none, after an exponential backoff (or the
        server's ``Retry-After``)."""
        import http.client  # here, not at the top: with ssl, 5 ms of every command's start (``registry``
        import urllib.error  # reads BACKEND below), where only a run that generates through this backend needs
        import urllib.request  # them

        headers = {"Content-Type": "application/json"}
        key = os.environ.get(self.api_key_env)
        if key:
            headers["Authorization"] = f"Bearer {key}"
        data = json.dumps(body).encode()
        failed_here: set[str] = set()
        for attempt in range(self.max_retries + 1):
            if stop.is_set():
                raise EndpointError("stopped")  # another request of the batch failed, or the run was interrupted
            wait = self.backoff_seconds * (2 ** attempt) * (0.5 + random.random() / 2)
            endpoint = self.endpoints.acquire(failed_here)
            url = endpoint.url + path
            try:
                request = urllib.request.Request(url, data=data, headers=headers, method="POST")
                with urllib.request.urlopen(request, timeout=self.timeout) as response:
                    reply = response.read()
                decoded = _json_object(reply)
                if decoded is not None:
                    self.endpoints.release(endpoint)
                    return decoded
                # Not JSON: a proxy's error page from one replica, or a --base-url that is no such API.
                self.endpoints.release(endpoint, "not a JSON reply")
                if len(self.base_urls) == 1 or not self.endpoints.untried_healthy(failed_here | {endpoint.url}):
                    head = reply[:80].decode("utf-8", "replace")
                    raise InputError(f"{url} did not answer with a JSON object (it began {head!r}); is --base-url "
                                     "an OpenAI-compatible API?", field="base_url")
                reason = "not a JSON reply"
            except urllib.error.HTTPError as exc:
                self.endpoints.release(endpoint, f"HTTP {exc.code}")
                if exc.code not in RETRYABLE or attempt == self.max_retries:
                    detail = " ".join(exc.read()[:300].decode("utf-8", "replace").split())  # one line, whatever it sent
                    raise EndpointError(f"{url} answered {exc.code}: {detail}") from None
                asked = retry_after(exc.headers.get("Retry-After"))
                wait = wait if asked is None else asked
                reason = f"HTTP {exc.code}"
            except (OSError, http.client.HTTPException) as exc:  # refused, reset, timed out, cut off
                self.endpoints.release(endpoint, str(exc))
                if attempt == self.max_retries:
                    raise EndpointError(f"{url} unreachable: {exc}") from None
                reason = str(exc)
            self._before_retry(endpoint.url, reason, attempt, wait, failed_here, stop)
        raise EndpointError("unreachable")  # the loop always returns or raises

    def _before_retry(self, endpoint_url: str, reason: str, attempt: int, wait: float, failed_here: set[str],
                      stop: threading.Event) -> None:
        """After a failed attempt on ``endpoint_url``: the next goes at once while another healthy endpoint is
        untried by this request; once none is, the round starts again after ``wait`` (or until ``stop``)."""
        failed_here.add(endpoint_url)
        if self.endpoints.untried_healthy(failed_here):
            log.warning("endpoint %s: %s; retry %d/%d on another endpoint", endpoint_url, reason, attempt + 1,
                        self.max_retries)
            return
        failed_here.clear()
        log.warning("endpoint %s: %s; retry %d/%d in %.1fs", endpoint_url, reason, attempt + 1,
                    self.max_retries, wait)
        stop.wait(wait)


def _json_object(reply: bytes) -> dict[str, Any] | None:
    """The endpoint's JSON object, or None for anything else (not UTF-8, not JSON, not an object)."""
    try:
        decoded = json.loads(reply.decode("utf-8"))
    except (ValueError, RecursionError):
        return None
    return decoded if isinstance(decoded, dict) else None


def build(options: BackendOptions, launch_device: str | None) -> OpenAICompatibleBackend:
    if not options.base_url:
        raise InputError("--backend openai needs --base-url (e.g. http://localhost:8000/v1)", field="base_url")
    return OpenAICompatibleBackend(options.base_url, options.model, api_key_env=options.api_key_env,
                                   concurrency=options.concurrency, timeout=options.request_timeout,
                                   max_retries=options.max_retries, samples_per_request=options.samples_per_request,
                                   extra_body=options.extra_body)


# The request fields the harness sets itself, and those that change what comes back (a stream, the prompt
# echoed, other choices): --extra-body may add others, never these.
HARNESS_FIELDS = ("model", "max_tokens", "max_completion_tokens", "temperature", "top_p", "seed", "n", "stop",
                  "messages", "prompt", "stream", "stream_options", "echo", "best_of", "logprobs", "top_logprobs",
                  "suffix")
EXTRA_BODY_BYTES = 65536
EXTRA_BODY_DEPTH = 32  # config.yaml records it: far below what the YAML writer's recursion allows


def check_extra_body(value: Any, name: str, source: str) -> dict[str, Any] | None:
    """A JSON object (text from the flag, a mapping from a config file) of fields to add to every request;
    an empty one is none (None)."""
    def refuse(why: str) -> InputError:
        return InputError(f"{why}; give a JSON object such as '{{\"repeat_penalty\": 1.0}}'", file=source, field=name)

    if isinstance(value, str):
        try:
            value = json.loads(value, parse_constant=_no_constant)
        except RecursionError:
            raise refuse("is nested too deeply") from None
        except ValueError as exc:
            raise refuse(f"is not a JSON object ({exc})") from None
    if not isinstance(value, dict):
        raise refuse("must be a JSON object")
    try:  # what is sent: plain JSON (no NaN, no dates or sets from a YAML file), not too deep or large
        size = len(json.dumps(value, allow_nan=False))
    except (TypeError, ValueError, RecursionError):
        raise refuse("must hold plain JSON values (no NaN or infinity)") from None
    if size > EXTRA_BODY_BYTES or _depth(value) > EXTRA_BODY_DEPTH:
        raise refuse(f"must be under {EXTRA_BODY_BYTES} bytes of JSON, nested {EXTRA_BODY_DEPTH} levels at most")
    taken = sorted(set(value) & set(HARNESS_FIELDS))
    if taken:
        raise InputError(f"sets {', '.join(taken)}, which the harness sets itself or which change what comes "
                         "back (use its own flags)", file=source, field=name)
    return value or None


def _depth(value: Any) -> int:
    children = value.values() if isinstance(value, dict) else value if isinstance(value, list) else ()
    return 1 + max(map(_depth, children), default=0)


def _no_constant(constant: str) -> Any:
    raise ValueError(f"{constant} is not a JSON number")


BACKEND = BackendSpec("openai", "a model served elsewhere through its OpenAI-compatible endpoint", build, options=(
    Option("base_url", list, [], "the endpoint's base URL, e.g. http://localhost:8000/v1 (vLLM, SGLang, TGI, "
                                 "llama.cpp); give it once per replica of the served model (or @FILE, one URL a "
                                 "line): each request goes to the least-loaded healthy one", check=check_urls,
           recorded_after="backend"),
    Option("api_key_env", str, "OPENAI_API_KEY", "environment variable holding the endpoint's API key (default "
                                                 "OPENAI_API_KEY); the key itself is never written anywhere"),
    Option("concurrency", int, 8, "requests in flight to the endpoint (default 8)", check=integer(1, 4096)),
    Option("request_timeout", float, 120.0, "seconds per endpoint request (default 120)",
           check=number(above=0, maximum=86400)),
    Option("max_retries", int, 6, "retries of a failed endpoint request, with exponential backoff (default 6)",
           check=integer(0, 100)),
    Option("samples_per_request", int, 1, "endpoint: ask for up to N samples of an identical prompt in one request "
                                          "(the API's n); default 1, one request per sample with its own seed, so "
                                          "results do not depend on this setting", check=integer(1, 1024)),
    Option("extra_body", str, None, "a JSON object of server-specific fields added to every request, e.g. "
                                    "'{\"repeat_penalty\": 1.0}' (llama-cpp-python's server penalises repeats "
                                    "unless told not to)", check=check_extra_body),
))
