"""Shared fixtures: a per-session cache for the tiny models, the CLI in a subprocess, the public data."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SHARED_DATA = ROOT.parent / "shared" / "data"


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
