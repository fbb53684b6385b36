"""Which isolation layers this machine offers, and the command that starts an execution server in them."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from sandbox.bytecode import SERVER_BOOTSTRAP, server_bytecode

log = logging.getLogger(__name__)

LAYERS = ("network", "filesystem", "pid_namespace", "unprivileged_uid", "process_limit", "resource_limits",
          "scrubbed_environment")

# Read-only system paths a Python interpreter and its C extensions need.
SYSTEM_PATHS = ("/usr", "/lib", "/lib64", "/lib32", "/bin", "/sbin", "/etc/ld.so.cache", "/etc/localtime",
                "/etc/alternatives", "/etc/ssl/certs")
# First uid of the range that execution servers run as when the harness is root (one uid per worker,
# so that RLIMIT_NPROC counts one worker's processes only).
SANDBOX_UID_BASE = 61000
SCRUBBED_ENV = {
    "PATH": "/usr/local/bin:/usr/bin:/bin",
    "LANG": "C.UTF-8",
    "PYTHONHASHSEED": "0",
    "PYTHONDONTWRITEBYTECODE": "1",
    "OPENBLAS_NUM_THREADS": "1",
    "OMP_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
    "MPLBACKEND": "Agg",
}


class SandboxUnavailable(RuntimeError):
    """``--sandbox full`` was asked for and a layer is missing."""


@dataclass(frozen=True)
class IsolationReport:
    """What isolation is in force, recorded in every run's summary."""

    mode: str
    layers: dict[str, bool]
    notes: list[str] = field(default_factory=list)

    @property
    def missing(self) -> list[str]:
        return [name for name, on in self.layers.items() if not on]

    def as_dict(self) -> dict:
        return {"mode": self.mode, "layers": dict(self.layers), "missing": self.missing, "notes": list(self.notes)}


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


@lru_cache(maxsize=None)
def _describe_interpreter(python: str) -> dict:
    """One run of the sandbox interpreter: the directories it needs and what its behaviour depends on."""
    probe = ("import json, os, site, sys\n"
             "paths = [sys.prefix, sys.base_prefix, sys.exec_prefix, os.path.dirname(os.path.realpath(sys.executable))]\n"
             "packages = sorted(name for folder in sys.path if os.path.isdir(folder) for name in os.listdir(folder)\n"
             "                  if name.endswith(('.dist-info', '.egg-info', '.egg-link', '.pth')))\n"
             "print(json.dumps({'paths': paths + site.getsitepackages(), 'version': sys.version, "
             "'packages': packages}))")
    return json.loads(run_python(python, probe, "report its paths"))


def interpreter_paths(python: str) -> tuple[str, ...]:
    """Directories the interpreter needs: its prefixes, its real executable's folder, site-packages."""
    paths = {str(Path(p).resolve()) for p in _describe_interpreter(python)["paths"] if p and Path(p).exists()}
    # Keep the outermost directories only.
    return tuple(sorted(p for p in paths if not any(p != q and p.startswith(q + os.sep) for q in paths)))


def interpreter_fingerprint(python: str) -> str:
    """The interpreter's version and its installed distributions (their dist-info folders name each
    version): upgrading numpy in the sandbox environment must not serve verdicts judged with the old one."""
    described = _describe_interpreter(python)
    return hashlib.sha256(json.dumps([described["version"], described["packages"]]).encode()).hexdigest()


@lru_cache(maxsize=None)
def _bwrap_works(bwrap: str) -> tuple[bool, str]:
    try:
        proc = subprocess.run([bwrap, "--unshare-net", "--unshare-pid", "--ro-bind", "/", "/", "--dev", "/dev",
                               "--proc", "/proc", "true"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError) as exc:
        return False, str(exc)
    return proc.returncode == 0, proc.stderr.strip()


MODES = ("auto", "full", "none")
LEGACY_MODES = {"strict": "full"}  # full's earlier name, still accepted (``strict`` is also a scorer's name)


def probe(mode: str) -> IsolationReport:
    """Find out which layers are available; in ``full`` mode refuse to go on without all of them."""
    notes: list[str] = []
    bwrap = shutil.which("bwrap")
    namespaces = False
    if mode == "none":
        notes.append("isolation turned off with --sandbox none")
    elif bwrap is None:
        notes.append("bubblewrap (bwrap) not found: no network, filesystem or PID namespace isolation")
    else:
        namespaces, err = _bwrap_works(bwrap)
        if not namespaces:
            notes.append(f"bwrap cannot create namespaces here: {err}")
    is_root = os.geteuid() == 0
    setpriv = shutil.which("setpriv") is not None
    unprivileged = namespaces and (not is_root or setpriv)
    if namespaces and is_root and not setpriv:
        notes.append("running as root without setpriv: programs run as root inside the namespaces")
    layers = {
        "network": namespaces,
        "filesystem": namespaces,
        "pid_namespace": namespaces,
        "unprivileged_uid": unprivileged or (not is_root),
        "process_limit": unprivileged or (not is_root),
        "resource_limits": True,
        "scrubbed_environment": True,
    }
    report = IsolationReport(mode=mode, layers=layers, notes=notes)
    if mode == "full" and report.missing:
        raise SandboxUnavailable(f"--sandbox full: missing isolation layers {', '.join(report.missing)} "
                                 f"({'; '.join(notes)}); install bubblewrap or use --sandbox auto")
    if report.missing and mode != "none":
        log.warning("sandbox: isolation layers MISSING: %s (%s)", ", ".join(report.missing), "; ".join(notes))
    return report


def server_command(report: IsolationReport, python: str, worker: int, settings: dict,
                   tmpfs_mb: int) -> list[str]:
    """The argv that starts one execution server for ``worker`` inside the available layers. The
    server's bytecode (:func:`sandbox.bytecode.server_bytecode`) must then be written to its stdin."""
    system = [p for p in SYSTEM_PATHS if os.path.exists(p)]
    binds = system + list(interpreter_paths(python))
    # An interpreter under /tmp (a CI runner's or a container's virtual environment) is bound into its own
    # read-only tmpfs there, named to the server so that cleaning /tmp between jobs leaves it alone.
    under_tmp = sorted({Path(p).relative_to("/tmp").parts[0] for p in binds if p.startswith("/tmp/")})
    if report.layers["pid_namespace"] and under_tmp:
        settings = {**settings, "reserved_tmp": under_tmp}
    inner = [python, "-I", "-c", SERVER_BOOTSTRAP, str(len(server_bytecode(python))), json.dumps(settings)]
    if not report.layers["pid_namespace"]:
        return inner
    argv = ["bwrap", "--unshare-pid", "--unshare-net", "--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try",
            "--die-with-parent", "--new-session", "--as-pid-1", "--clearenv"]
    for name, value in SCRUBBED_ENV.items():
        argv += ["--setenv", name, value]
    # /tmp's tmpfs first: bwrap applies its arguments in order, and a tmpfs mounted after the binds would
    # hide whatever was bound below /tmp.
    argv += ["--proc", "/proc", "--dev", "/dev", "--perms", "01777", "--size", str(tmpfs_mb * 1024 * 1024),
             "--tmpfs", "/tmp"]
    argv += ["--mqueue", "/dev/mqueue"]  # the namespace's POSIX message queues, for the server to remove (sandbox.ipc)
    made = {"/tmp"}
    for name in under_tmp:
        argv += ["--perms", "0755", "--size", str(1024 * 1024), "--tmpfs", f"/tmp/{name}"]
        made.add(f"/tmp/{name}")
    for path in binds:
        for parent in reversed(Path(path).parents):
            text = str(parent)
            if text != "/" and text not in made and not any(text == p or text.startswith(p + "/") for p in system):
                argv += ["--perms", "0755", "--dir", text]
                made.add(text)
        argv += ["--ro-bind", path, path]
    for name in under_tmp:
        argv += ["--remount-ro", f"/tmp/{name}"]
    argv += ["--chdir", "/tmp", "--"]
    if os.geteuid() == 0 and report.layers["unprivileged_uid"]:
        uid = str(SANDBOX_UID_BASE + worker)
        argv += ["setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups", "--inh-caps=-all",
                 "--bounding-set=-all"]
    return argv + inner


def scrubbed_environment() -> dict[str, str]:
    """Environment for a server started without bwrap: nothing of the user's (no tokens, no keys)."""
    return dict(SCRUBBED_ENV)


def default_sandbox_python() -> str:
    return sys.executable
