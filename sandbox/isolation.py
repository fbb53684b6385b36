"""Which isolation layers this machine offers, and the command that starts an execution server in them."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import platform
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from sandbox.bytecode import SERVER_BOOTSTRAP, server_bytecode
from sandbox.inside.confine.syscall_filter import filter_program
from sandbox.interpreter import SandboxUnavailable, run_python
from sandbox.mounts import filesystem_args

log = logging.getLogger(__name__)

LAYERS = ("network", "filesystem", "pid_namespace", "unprivileged_uid", "process_limit", "resource_limits",
          "scrubbed_environment")

# Read-only system paths a Python interpreter and its C extensions need.
SYSTEM_PATHS = ("/usr", "/lib", "/lib64", "/lib32", "/bin", "/sbin", "/etc/ld.so.cache", "/etc/localtime",
                "/etc/alternatives", "/etc/ssl/certs")
# First uid of the range that execution servers run as when the harness is root (one uid per worker,
# so that RLIMIT_NPROC counts one worker's processes only).
SANDBOX_UID_BASE = 61000
ROOT_NOTE = (f"the harness runs as root: programs run as unprivileged uid {SANDBOX_UID_BASE} and up (one per worker), "
             "with no supplementary groups, each in a session of its own")
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


# Run in the sandbox interpreter: the folders and files it needs (its standard library, site-packages, the
# folders of the shared libraries it has mapped, such as libpython, and its installation's lib folder, where a
# statically linked conda interpreter keeps the libraries numpy loads; its real executable and a virtual
# environment's pyvenv.cfg), the site-packages of its base installation that it does not use, and what its
# behaviour depends on.
_DESCRIBE = """import json, os, site, sys
def real(paths):
    return sorted(set(os.path.realpath(p) for p in paths if p and os.path.exists(p)))
executable = os.path.realpath(sys.executable)
mapped = set()
if os.path.exists('/proc/self/maps'):
    with open('/proc/self/maps') as maps:
        mapped = set(f[5].strip() for f in (line.split(None, 5) for line in maps) if len(f) == 6 and f[5][:1] == '/')
sites = real(site.getsitepackages())
folders = real([os.path.dirname(os.__file__)] + [p for p in sys.path if os.path.basename(p) == 'lib-dynload']
               + [os.path.dirname(p) for p in mapped if os.path.realpath(p) != executable]
               + [os.path.join(sys.base_prefix, 'lib')]) + sites
hidden = [p for p in real(site.getsitepackages([sys.base_prefix, sys.base_exec_prefix])) if p not in sites]
packages = sorted(name for folder in sys.path if os.path.isdir(folder) for name in os.listdir(folder)
                  if name.endswith(('.dist-info', '.egg-info', '.egg-link', '.pth')))
print(json.dumps({'folders': folders, 'hidden': hidden, 'version': sys.version, 'packages': packages,
                  'files': real([executable, os.path.join(sys.prefix, 'pyvenv.cfg')]), 'executable': executable}))
"""


@lru_cache(maxsize=None)
def _describe_interpreter(python: str) -> dict:
    """One run of the sandbox interpreter: what it needs bound and what its behaviour depends on."""
    return json.loads(run_python(python, _DESCRIBE, "report its paths"))


def _outside_system(path: str) -> bool:
    return not any(path == p or path.startswith(p + "/") for p in SYSTEM_PATHS)


def interpreter_binds(python: str) -> tuple[list[str], list[tuple[str, str]], list[str]]:
    """What of the interpreter the sandbox binds, outside the system folders: ``(folders, files, hidden)``,
    files as ``(source, destination)`` (the executable also at the path it is started by), hidden the
    folders inside a bound one that it does not use. Not the folders above them: a virtual environment
    inside the repository, or pyenv's interpreters in a home folder, expose neither."""
    described = _describe_interpreter(python)
    candidates = [p for p in described["folders"] if _outside_system(p)]
    # Keep the outermost folders only.
    folders = sorted(p for p in candidates if not any(p != q and p.startswith(q + os.sep) for q in candidates))
    files = [(p, p) for p in described["files"]]
    if os.path.isabs(python) and os.path.realpath(python) == described["executable"]:  # a link, not a wrapper
        files.append((described["executable"], python))
    files = sorted({(s, d) for s, d in files if _outside_system(d) and not any(
        d == f or d.startswith(f + os.sep) for f in folders)})
    hidden = [p for p in described["hidden"] if any(p != f and p.startswith(f + os.sep) for f in folders)]
    return folders, files, hidden


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
    # As root, every server drops to a uid of its own (setpriv), with or without namespaces.
    unprivileged = not is_root or shutil.which("setpriv") is not None
    layers = {
        "network": namespaces,
        "filesystem": namespaces,
        "pid_namespace": namespaces,
        "unprivileged_uid": unprivileged,
        "process_limit": unprivileged,
        "resource_limits": True,
        "scrubbed_environment": True,
    }
    report = IsolationReport(mode=mode, layers=layers, notes=notes)
    if mode == "full" and report.missing:
        raise SandboxUnavailable(f"--sandbox full: missing isolation layers {', '.join(report.missing)} "
                                 f"({'; '.join(notes)}); install bubblewrap or use --sandbox auto")
    if not unprivileged:
        raise SandboxUnavailable("the harness runs as root and setpriv is missing, so programs would run as root: "
                                 "install util-linux (setpriv) or run the harness as another user")
    if is_root and not namespaces:
        notes.append(ROOT_NOTE)
    if filter_program(platform.machine()) is None:
        notes.append(f"programs may create user namespaces: no syscall filter for {platform.machine()}")
    if report.missing and mode != "none":
        log.warning("sandbox: isolation layers MISSING: %s (%s)", ", ".join(report.missing), "; ".join(notes))
    return report


def _unprivileged(worker: int) -> list[str]:
    """The argv prefix that drops a server started as root to ``worker``'s own uid: no supplementary groups,
    no capabilities. Without it a program would run as root (and, without namespaces, could write into any
    process's open files through /proc/*/fd)."""
    if os.geteuid() != 0:
        return []
    uid = str(SANDBOX_UID_BASE + worker)
    return ["setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups", "--inh-caps=-all", "--bounding-set=-all"]


def server_command(report: IsolationReport, python: str, worker: int, settings: dict,
                   tmpfs_mb: int) -> list[str]:
    """The argv that starts one execution server for ``worker`` inside the available layers. The
    server's bytecode (:func:`sandbox.bytecode.server_bytecode`) must then be written to its stdin."""
    blocked = filter_program(platform.machine())
    if blocked:
        settings = {**settings, "syscall_filter": blocked}
    if not report.layers["pid_namespace"]:
        return _unprivileged(worker) + _inner(python, settings)
    system = [p for p in SYSTEM_PATHS if os.path.exists(p)]
    filesystem, under_tmp = filesystem_args(system, *interpreter_binds(python), tmpfs_mb)
    # An interpreter under /tmp (a CI runner's or a container's virtual environment) is bound into its own
    # read-only tmpfs there, named to the server so that cleaning /tmp between jobs leaves it alone.
    if under_tmp:
        settings = {**settings, "reserved_tmp": under_tmp}
    argv = ["bwrap", "--unshare-pid", "--unshare-net", "--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try",
            "--die-with-parent", "--new-session", "--as-pid-1", "--clearenv"]
    for name, value in SCRUBBED_ENV.items():
        argv += ["--setenv", name, value]
    unprivileged = _unprivileged(worker)
    hide = ["--cap-add", "CAP_SYS_ADMIN", "--"] + HIDE_PROCESSES if unprivileged else ["--"]
    return argv + filesystem + ["--chdir", "/tmp"] + hide + unprivileged + _inner(python, settings)


# /proc shows only the processes a program could ptrace: not the server, its zygote or its tests' process (not
# dumpable), whose counters (page faults, CPU time, their children's) outlive each job and would carry what a
# program chose to the next. Remounting needs CAP_SYS_ADMIN, which bubblewrap started by root gives the shell
# only: setpriv's change to an unprivileged uid clears it before the server starts. (Bubblewrap started by a
# user cannot remount /proc, even with the capability in its user namespace: there /proc lists them all.)
HIDE_PROCESSES = ["/bin/sh", "-c", 'mount -o remount,hidepid=ptraceable /proc 2>/dev/null; exec "$@"', "sh"]


def _inner(python: str, settings: dict) -> list[str]:
    return [python, "-I", "-c", SERVER_BOOTSTRAP, str(len(server_bytecode(python))), json.dumps(settings)]


def drop_root_for_programs(report: IsolationReport, python: str) -> None:
    """As root without namespaces, programs run as an unprivileged uid on the host's own files: say so in the log,
    or refuse an interpreter whose files that uid cannot read (a virtual environment whose base lies in /root,
    mode 700) with what to do, rather than failing every program or running them as root."""
    if report.layers["pid_namespace"] or os.geteuid() != 0:
        return
    described = _describe_interpreter(python)
    needed = described["folders"] + described["files"]
    check = "import os, sys\nfor path in sys.argv[1:]:\n    try:\n        os.close(os.open(path, os.O_RDONLY))\n" \
            "    except OSError:\n        sys.exit(path)\n"
    try:
        proc = subprocess.run(_unprivileged(0) + [python, "-I", "-c", check, *needed], env=scrubbed_environment(),
                              capture_output=True, text=True, timeout=60)
        unreadable = (proc.stderr.strip().splitlines() or [python])[-1] if proc.returncode else ""
    except (OSError, subprocess.SubprocessError):
        unreadable = python
    if unreadable and unreadable not in needed:  # it did not start at all
        unreadable = python
    if not unreadable:
        log.info("sandbox: %s", ROOT_NOTE)
        return
    closed = [str(p) for p in (*reversed(Path(unreadable).parents), Path(unreadable))
              if p.exists() and not p.stat().st_mode & (0o001 if p.is_dir() and p != Path(unreadable) else 0o004)]
    raise SandboxUnavailable(
        f"--sandbox {report.mode} runs programs as uid {SANDBOX_UID_BASE} and up, not as root, and that uid cannot "
        f"read {unreadable}" + (f" ({closed[0]} is closed to other users)" if closed else "") + ", which the "
        f"sandbox interpreter {python} needs: pass --sandbox-python an interpreter it can read (such as "
        "/usr/bin/python3, with the packages programs need), use bubblewrap (--sandbox auto), or run the harness "
        "as another user")


def scrubbed_environment() -> dict[str, str]:
    """Environment for a server started without bwrap: nothing of the user's (no tokens, no keys)."""
    return dict(SCRUBBED_ENV)


def default_sandbox_python() -> str:
    return sys.executable
