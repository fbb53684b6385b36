"""``run-benchmark serve`` started as a user starts it, in a subprocess on 127.0.0.1, for the service's tests."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextlib.contextmanager
def running_service(*flags: str, env: dict[str, str] | None = None) -> Iterator[tuple[str, subprocess.Popen]]:
    """The service's base URL once it answers, and its process; ended with SIGTERM (it must stop cleanly)."""
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "harness.cli", "serve", "--port", str(port), "--sandbox", "auto",
                             *flags], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})})
    try:
        line = proc.stdout.readline()  # "serving on ..." once the sandbox has passed its canary
        if not line.startswith("serving on"):
            proc.kill()
            raise RuntimeError(f"serve did not start: {line}{proc.communicate()[1][-2000:]}")
        url = f"http://127.0.0.1:{port}"
        _wait_until_listening(url, proc)
        yield url, proc
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        proc.stdout.close()
        proc.stderr.close()


def _wait_until_listening(url: str, proc: subprocess.Popen) -> None:
    import requests

    for _ in range(300):
        try:
            requests.get(url + "/health", timeout=5)
            return
        except requests.ConnectionError:
            if proc.poll() is not None:
                raise RuntimeError(f"serve ended: {proc.stderr.read()[-2000:]}") from None
            time.sleep(0.1)
    raise RuntimeError("serve did not listen within 30 s")
