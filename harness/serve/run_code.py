"""SandboxFusion's ``/run_code`` for Python: its request in, one sandbox job, its response out.

In: the JSON object the ``sandbox-fusion`` client sends (``code``, ``language``, ``stdin``, ``run_timeout``,
``compile_timeout``, ``memory_limit_MB``, ``files``, ``fetch_files``). Out: ``status`` (``Success`` when the
program exited 0, ``Failed`` otherwise, ``SandboxError`` when the sandbox failed), ``message`` and
``run_result`` (``status``, ``return_code``, ``stdout``, ``stderr``, ``execution_time``, ``cpu_time``).

The program runs as a script (``__name__ == "__main__"``, ``sys.stdin`` holding ``stdin``) inside the printed-
value job the sandbox already has: a small runner (``RUNNER``) executes it and reports its exit code as the
value the job compares with 0. The runner shares the program's process, so a program can fake its own exit
code, which deceives nobody but its caller: ``/run_code`` returns what the program did and printed, and a
verdict built on it is only as sound as the caller's check (``/verify`` decides verdicts where the program
cannot reach).
"""

from __future__ import annotations

import re
from typing import Any

from harness.serve.input_limits import BadRequest
from sandbox.pool import Execution, Job, Limits
from sandbox.inside.reply import SIGNAL_REASONS

LANGUAGES = ("python", "python3")
# Fields the client may send that this service cannot honour when set (empty values are what it sends by default).
UNSUPPORTED = ("files", "fetch_files")
KNOWN = {"code", "language", "stdin", "run_timeout", "compile_timeout", "memory_limit_MB", *UNSUPPORTED}
OUTPUT_NOTE = "stdout: its first 4096 bytes; stderr: its last 4096 bytes"

# stdin becomes a memory file opened as descriptor 0, so that input(), sys.stdin.buffer, open(0) and os.read(0)
# all read it (a pipe would block past its 64 KiB buffer). Not a file in the job's folder: a file made in the
# sandbox's /tmp moves the next inode number there, and the server then ends itself (``kernel_counters``).
RUNNER = '''import io as _io, os as _os, sys as _sys
_fd = _os.memfd_create("stdin")
_data = memoryview({stdin!r})
while _data:
    _data = _data[_os.write(_fd, _data):]
_os.lseek(_fd, 0, 0)
_os.dup2(_fd, 0)
_os.close(_fd)
_sys.stdin = _io.TextIOWrapper(_io.BufferedReader(_io.FileIO(0, "r", closefd=False)), encoding="utf-8")
_sys.argv = ["main.py"]


def _run():
    try:
        exec(compile({code!r}, "main.py", "exec"), {{"__name__": "__main__", "__builtins__": __builtins__}})
    except SystemExit as exc:
        if exc.code is None or isinstance(exc.code, int):
            return (exc.code or 0) & 255
        print(exc.code, file=_sys.stderr)
        return 1
    except BaseException as exc:
        import traceback
        traceback.print_exception(type(exc), exc, exc.__traceback__.tb_next)
        return 1
    return 0


_code = _run()
try:
    _sys.stdout.flush()
except BaseException:
    pass
print(_code, file=_io.StringIO())
'''
_EXIT_CODE = re.compile(r"printed (\d+), expected 0$")
_EXITED = re.compile(r"exited with code (\d+)")
_SIGNALS = {reason: -int(signum) for signum, (_, reason) in SIGNAL_REASONS.items()}


def job_from(body: dict[str, Any], max_run_timeout: float, default_memory_mb: int) -> Job:
    """The sandbox job for a request; ``BadRequest`` (400, one line) for what this service does not do."""
    unknown = sorted(set(body) - KNOWN)
    if unknown:
        raise BadRequest(f"unknown field {unknown[0]!r} (this service takes: {', '.join(sorted(KNOWN))})")
    language = body.get("language")
    if language not in LANGUAGES:
        raise BadRequest(f"language {language!r} is not supported: only python (field 'language')")
    for name in UNSUPPORTED:
        if body.get(name):
            raise BadRequest(f"field {name!r} is not supported: send the program's input as 'stdin'")
    code, stdin = body.get("code"), body.get("stdin") or ""
    if not isinstance(code, str) or not isinstance(stdin, str):
        raise BadRequest("fields 'code' and 'stdin' must be strings")
    timeout = _number(body, "run_timeout", 10.0, max_run_timeout)
    _number(body, "compile_timeout", 10.0, float("inf"))  # checked, unused: Python is not compiled first
    # The service's --memory-mb is the ceiling: a client may lower it, never raise it (its programs share the host).
    memory = int(_number(body, "memory_limit_MB", default_memory_mb, default_memory_mb))
    if memory < 64:
        raise BadRequest("field 'memory_limit_MB' must be at least 64")
    program = RUNNER.format(code=code, stdin=stdin.encode("utf-8", "surrogatepass"))
    return Job(program=program, mode="print_value", scorer="strict", expected="0",
               limits=Limits(wall_seconds=timeout, cpu_seconds=timeout, memory_mb=memory))


def _number(body: dict[str, Any], name: str, default: float, maximum: float) -> float:
    value = body.get(name)
    if value is None:
        return default
    if type(value) not in (int, float) or not 0 < value <= maximum:
        raise BadRequest(f"field {name!r} must be a number above 0 and at most {maximum:g}")
    return float(value)


def response_from(execution: Execution) -> dict[str, Any]:
    """SandboxFusion's response for the program's execution."""
    if execution.status == "sandbox_error":
        return {"status": "SandboxError", "message": execution.reason, "run_result": None}
    timed_out = execution.status == "timeout"
    return_code = None if timed_out else exit_code(execution)
    run_result = {"status": "TimeLimitExceeded" if timed_out else "Finished", "return_code": return_code,
                  "stdout": execution.stdout, "stderr": execution.stderr, "execution_time": execution.duration,
                  "cpu_time": execution.cpu_seconds}
    message = "" if execution.passed else execution.reason if not _EXIT_CODE.search(execution.reason) else ""
    return {"status": "Success" if return_code == 0 else "Failed", "message": message, "compile_result": None,
            "run_result": run_result, "executor_pod_name": None, "files": {}}


def exit_code(execution: Execution) -> int:
    """The program's exit code (a signal: minus its number, as Python's subprocess gives it)."""
    if execution.passed:
        return 0
    for pattern in (_EXIT_CODE, _EXITED):
        match = pattern.search(execution.reason)
        if match:
            return int(match.group(1))
    return _SIGNALS.get(execution.reason, -9 if execution.status in ("killed", "output_limit") else 1)
