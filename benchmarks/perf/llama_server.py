"""llama.cpp's OpenAI-compatible server for the benchmarks: started on a free 127.0.0.1 port with a given
Python (one with ``llama-cpp-python[server]``), waited for, stopped; and direct requests to it, the
baseline of ``--backend openai``."""

from __future__ import annotations

import json
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from harness.backends.openai_compatible.backend import OpenAICompatibleBackend

MODEL_NAME = "smollm2-135m-instruct"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LlamaServer:
    """``python -m llama_cpp.server`` serving ``gguf`` on 127.0.0.1 while the ``with`` block runs."""

    def __init__(self, python: str, gguf: Path, threads: int, context: int = 4096, wait_seconds: float = 300):
        self.command = [python, "-m", "llama_cpp.server", "--model", str(gguf), "--model_alias", MODEL_NAME,
                        "--host", "127.0.0.1", "--port", str(free_port()), "--n_threads", str(threads),
                        "--n_threads_batch", str(threads), "--n_ctx", str(context)]
        self.url = f"http://127.0.0.1:{self.command[self.command.index('--port') + 1]}/v1"
        self.wait_seconds = wait_seconds

    def __enter__(self) -> LlamaServer:
        if not Path(self.command[0]).exists():
            raise SystemExit(f"llama_server: {self.command[0]} does not exist (see --server-python)")
        # The server logs plenty while loading: into a file, as a pipe nobody reads would block it.
        self.log = tempfile.TemporaryFile(mode="w+")
        self.process = subprocess.Popen(self.command, stdout=self.log, stderr=subprocess.STDOUT, text=True)
        deadline = time.monotonic() + self.wait_seconds
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                self.log.seek(0)
                raise SystemExit(f"llama_server: the server exited: {self.log.read()[-2000:]}")
            try:
                with urllib.request.urlopen(self.url + "/models", timeout=5):
                    return self
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                time.sleep(0.5)
        self.__exit__()
        raise SystemExit(f"llama_server: no answer from {self.url} within {self.wait_seconds:.0f} s")

    def __exit__(self, *exc: object) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.log.close()


def openai_backend(url: str, concurrency: int) -> OpenAICompatibleBackend:
    return OpenAICompatibleBackend([url], MODEL_NAME, concurrency=concurrency, timeout=600)


def _chat(url: str, messages: list[dict[str, str]], max_tokens: int) -> tuple[int, str]:
    body = json.dumps({"model": MODEL_NAME, "messages": messages, "max_tokens": max_tokens, "temperature": 0})
    request = urllib.request.Request(url + "/chat/completions", data=body.encode(),
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=600) as answer:
        reply: dict[str, Any] = json.load(answer)
    return int(reply["usage"]["completion_tokens"]), reply["choices"][0]["message"]["content"] or ""


def direct_chat(url: str, conversations: list[list[dict[str, str]]], max_tokens: int,
                concurrency: int) -> tuple[float, int, list[str]]:
    """Each conversation's reply, ``concurrency`` requests in flight: seconds, completion tokens, replies."""
    start = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        answers = list(pool.map(lambda m: _chat(url, m, max_tokens), conversations))
    return time.perf_counter() - start, sum(tokens for tokens, _ in answers), [text for _, text in answers]
