"""The sandbox interpreter run as a tool: a command run in it the way the server runs (isolated mode), and the
error that says the sandbox cannot be had. Below both the server's bytecode (``sandbox.bytecode``), which the
interpreter compiles, and the isolation probe (``sandbox.isolation``), which asks it for its paths."""

from __future__ import annotations

import subprocess


class SandboxUnavailable(RuntimeError):
    """``--sandbox full`` was asked for and a layer is missing."""


def run_python(python: str, code: str, what: str, stdin: bytes = b"") -> bytes:
    """Runs ``code`` in the sandbox interpreter (isolated mode, as the server runs) and returns its stdout;
    if it cannot, a SandboxUnavailable that says why."""
    try:
        return subprocess.run([python, "-I", "-c", code], input=stdin, capture_output=True, timeout=60,
                              check=True).stdout
    except subprocess.CalledProcessError as exc:
        last = (exc.stderr.decode(errors="replace").strip().splitlines() or ["no error output"])[-1]
        raise SandboxUnavailable(f"sandbox python {python!r} cannot {what}: {last}") from exc
    except (OSError, subprocess.SubprocessError) as exc:
        raise SandboxUnavailable(f"sandbox python {python!r} does not run: {exc}") from exc
