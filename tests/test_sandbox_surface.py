"""What a program can reach beyond its job, through the real sandbox: kernel surface no program needs (user
namespaces, /dev/pts), files docs/sandbox.md says it cannot read (the repository, the real home's pyenv), and, with
``--sandbox none`` as root, other processes' open files (a program never runs as root)."""

from __future__ import annotations

import json
import logging
import os
import select
import shutil
import site
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ROOT, python_for_sandbox_none, refused_in_process
from sandbox.isolation import SYSTEM_PATHS, probe
from sandbox.pool import Job, Limits, SandboxPool

LIMITS = Limits(wall_seconds=20, cpu_seconds=10, memory_mb=1024)
GOOD = "def double(x):\n    return 2 * x\n"
CHECK = "def check(candidate):\n    assert candidate(2) == 4\n"
# The tests' process runs trusted code: it reports its own uid through the verdict.
CHECK_AS_UNPRIVILEGED = "def check(candidate):\n    import os\n    assert os.getuid() != 0, 'tests as root'\n" \
                        "    assert candidate(2) == 4\n"


def require_namespaces() -> None:
    """As the hostile tests: a skip where bubblewrap cannot make namespaces, a failure in CI with it installed."""
    if probe("auto").layers["pid_namespace"]:
        return
    if os.environ.get("CI") == "true" and shutil.which("bwrap"):
        pytest.fail("bubblewrap is installed but cannot create namespaces")
    pytest.skip("needs bubblewrap namespaces")


def run(program: str, mode: str = "auto", python: str | None = None, test: str = CHECK) -> dict:
    """Runs ``program`` (which prints one JSON line of findings) and returns the findings."""
    with SandboxPool(workers=1, mode=mode, python=python, preload=()) as pool:
        execution = pool.run_one(Job(program=program + GOOD, mode="assert", limits=LIMITS, test=test,
                                     entry_point="double"))
    assert execution.passed, (execution.status, execution.reason, execution.stderr[-2000:])
    return json.loads(execution.stdout.strip().splitlines()[-1])


USER_NAMESPACE = """import ctypes, json, os, subprocess
libc = ctypes.CDLL(None, use_errno=True)
found = {}
found['unshare_tool'] = subprocess.run(['unshare', '--user', 'true'], capture_output=True).returncode
found['unshare'] = [libc.unshare(0x10000000), ctypes.get_errno()]  # CLONE_NEWUSER
found['uid_after'] = os.getuid()  # 65534 (unmapped) once in a new user namespace
found['dev'] = sorted(os.listdir('/dev'))
found['devpts'] = 'devpts' in open('/proc/self/mountinfo').read()
with open('/dev/null', 'w') as null:
    null.write('x')
found['urandom'] = len(open('/dev/urandom', 'rb').read(8))
print(json.dumps(found))
"""


def test_no_user_namespace_and_no_devpts_inside_the_sandbox():
    require_namespaces()
    found = run(USER_NAMESPACE)
    assert found["unshare"] == [-1, 1], found  # EPERM
    assert found["uid_after"] != 65534 and found["unshare_tool"] != 0, found
    assert not found["devpts"] and "pts" not in found["dev"] and "ptmx" not in found["dev"], found
    assert {"null", "zero", "full", "random", "urandom"} <= set(found["dev"]) and found["urandom"] == 8, found


def _private_folders() -> list[str]:
    """Folders above what the interpreter needs: the repository, the virtual environment's own folders, the
    interpreter's installation folder and the home folder holding pyenv (none of them system folders)."""
    system = tuple(p for p in SYSTEM_PATHS if os.path.isdir(p))
    candidates = {ROOT, ROOT / "tests", ROOT / ".git", Path(sys.prefix), Path(sys.base_prefix),
                  Path(sys.base_prefix).parent, Path.home(), Path.home() / ".pyenv"}
    candidates |= {Path(folder).parent for folder in site.getsitepackages()}
    return sorted(str(p) for p in candidates
                  if str(p) != "/" and p.is_dir()
                  and not any(str(p) == s or str(p).startswith(s + "/") for s in system))


def _has(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


def test_a_program_reads_nothing_above_the_interpreters_own_files():
    require_namespaces()
    folders = _private_folders()
    readme = ROOT / "README.md"
    assert str(ROOT) in folders and readme.exists()
    program = (f"import json, os\nfound = {{}}\nfor folder in {folders!r}:\n"
               "    try:\n        found[folder] = sorted(os.listdir(folder))\n"
               "    except OSError as exc:\n        found[folder] = type(exc).__name__\n"
               f"try:\n    found['readme'] = open({str(readme)!r}).read(20)\n"
               "except OSError as exc:\n    found['readme'] = type(exc).__name__\n"
               "import email.mime.text, json.decoder\n")  # the standard library still imports
    if _has("numpy"):  # site-packages still imports
        program += "found['numpy'] = __import__('numpy').__name__\n"
    found = run(program + "print(json.dumps(found))\n")
    assert found["readme"] == "FileNotFoundError", found
    listed = {folder: value for folder, value in found.items() if folder != "readme" and isinstance(value, list)}
    assert listed == {}, listed
    assert found.get("numpy", "numpy") == "numpy"


@pytest.fixture
def victim(tmp_path):
    """A root process elsewhere on the machine holding a temporary file and a pipe open (a compiler's
    temporary file, another shell's input): ``(pid, file, pipe's read end)``."""
    held = tmp_path / "held.txt"
    held.write_text("original\n")
    read_end, write_end = os.pipe()
    holder = f"import time\nf = open({str(held)!r}, 'r+')\nprint('ready', flush=True)\ntime.sleep(120)\n"
    proc = subprocess.Popen([sys.executable, "-c", holder], pass_fds=(write_end,), stdout=subprocess.PIPE, text=True)
    os.close(write_end)
    assert proc.stdout.readline().strip() == "ready"
    yield proc.pid, held, read_end
    proc.kill()
    proc.wait()
    os.close(read_end)


@pytest.mark.skipif(os.geteuid() != 0, reason="programs already run as the harness's own unprivileged user")
def test_sandbox_none_as_root_never_runs_a_program_as_root(victim, caplog):
    pid, held, read_end = victim
    program = ("import json, os\nfound = {'uid': os.getuid(), 'gid': os.getgid(), 'groups': os.getgroups(),\n"
               "         'session': os.getsid(0), 'written': [], 'refused': []}\n"
               f"try:\n    found['harness_fds'] = len(os.listdir('/proc/{os.getpid()}/fd'))\n"
               "except OSError as exc:\n    found['harness_fds'] = type(exc).__name__\n"
               f"try:\n    fds = os.listdir('/proc/{pid}/fd')\n"
               "except OSError:\n    fds = ['0', '1', '2', '3', '4', '5']\n"
               "for fd in fds:\n    try:\n"
               f"        target = os.open('/proc/{pid}/fd/' + fd, os.O_WRONLY | os.O_NONBLOCK)\n"
               "        os.write(target, b'PWNED')\n        found['written'].append(fd)\n"
               "    except OSError as exc:\n        found['refused'].append(type(exc).__name__)\n"
               "import ctypes\nlibc = ctypes.CDLL(None, use_errno=True)\n"
               "found['unshare'] = [libc.unshare(0x10000000), ctypes.get_errno()]  # CLONE_NEWUSER, last\n"
               "print(json.dumps(found))\n")
    with caplog.at_level(logging.INFO, logger="sandbox"):
        found = run(program, mode="none", python=python_for_sandbox_none(), test=CHECK_AS_UNPRIVILEGED)
    assert found["uid"] != 0 and found["gid"] != 0 and found["groups"] == [], found
    # not in the harness's session (the server and each program have their own; the program's parent is now
    # the zygote, which shares the server's)
    assert found["session"] != os.getsid(0) and found["harness_fds"] == "PermissionError", found
    assert found["written"] == [] and "PermissionError" in found["refused"], found
    assert found["unshare"] == [-1, 1], found  # the syscall filter holds without bubblewrap too
    assert held.read_text() == "original\n"
    assert select.select([read_end], [], [], 0)[0] == [], os.read(read_end, 100)
    said = [r.getMessage() for r in caplog.records if "unprivileged uid" in r.getMessage()]
    assert len(said) == 1, said


@pytest.mark.skipif(os.geteuid() != 0, reason="as another user the interpreter is the harness's own")
def test_sandbox_none_as_root_refuses_an_interpreter_the_unprivileged_uid_cannot_run(tmp_path, capsys):
    private = tmp_path / "private"  # a virtual environment in a folder only root may enter
    private.mkdir(mode=0o700)
    subprocess.run([python_for_sandbox_none(), "-m", "venv", "--without-pip", str(private / "venv")], check=True)
    samples = tmp_path / "samples.jsonl"
    samples.write_text(json.dumps({"task_id": "core/he-roman", "completion": "    return ''\n"}) + "\n")
    line = refused_in_process(["evaluate", "--suite", "core", "--samples", str(samples), "--sandbox", "none",
                               "--sandbox-python", str(private / "venv" / "bin" / "python"),
                               "--results-dir", str(tmp_path / "r"), "--no-verdict-cache"], capsys)
    assert "--sandbox-python" in line and str(private) in line and "not as root" in line, line
