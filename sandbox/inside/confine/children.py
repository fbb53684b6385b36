"""The processes of a job (forked by the zygote, ``sandbox.inside.zygote``), from the fork to the program's first line.

In: the job, its private working directory, its resource limits (worked out once per set of limits by
``rlimits``) and the descriptors the process may keep. Out: a process in its own session, in that
directory, under those limits, with its output on its own pipes and every other descriptor of the
server closed; it runs the program (``sandbox.inside.job.printing`` or ``sandbox.inside.job.candidate``) and exits.
"""

import io
import json
import os
import resource
import _signal
import sys

from sandbox.inside.job.candidate import flush_output, run_candidate
from sandbox.inside.wire.channel import Link
from sandbox.inside.job.printing import run_printing_program

MIB = 1024 * 1024
_LIBC = []


def rlimits(limits):
    """The ``(resource, soft, hard)`` triples for a job's limits, worked out in the server so that the
    child only has to set them."""
    memory = int(limits["memory_mb"]) * MIB
    cpu = max(1, int(limits["cpu_seconds"] + 0.999))
    settings = [
        (resource.RLIMIT_AS, memory),
        (resource.RLIMIT_CPU, cpu),
        (resource.RLIMIT_FSIZE, int(limits["file_size_mb"]) * MIB),
        (resource.RLIMIT_NOFILE, int(limits["open_files"])),
        (resource.RLIMIT_CORE, 0),
    ]
    if limits.get("processes"):
        settings.append((resource.RLIMIT_NPROC, int(limits["processes"])))
    triples = []
    for which, value in settings:
        soft, hard = resource.getrlimit(which)
        if hard != resource.RLIM_INFINITY:
            value = min(value, hard)
        # CPU: SIGXCPU at the soft limit (reported as a timeout), SIGKILL one second later.
        ceiling = value + 1 if which == resource.RLIMIT_CPU else value
        if hard != resource.RLIM_INFINITY:
            ceiling = min(ceiling, hard)
        triples.append((which, value, ceiling))
    return triples


def printing_child(job, workdir, resource_limits, out_w, err_w, res_w, max_fd):
    """The one process of a printed-value job: it reports what the program printed, nothing more."""
    try:
        _enter_job(workdir, resource_limits, out_w, err_w, (res_w,), max_fd)
        result_pipe = io.FileIO(res_w, "w", closefd=True)
        reporter = os.getpid()

        def report(message):
            if os.getpid() != reporter:  # a process the program forked runs on past its fork
                os._exit(0)
            try:
                sys.stdout.flush()
            except Exception:
                pass
            result_pipe.write(json.dumps(message).encode())
            result_pipe.close()

        run_printing_program(job, report)
        flush_output()
    except BaseException:
        os._exit(70)
    os._exit(0)


def candidate_child(job, workdir, resource_limits, out_w, err_w, read_fd, write_fd, max_fd):
    """The program's process: its output pipes and its end of the channel are all it has."""
    try:
        _enter_job(workdir, resource_limits, out_w, err_w, (read_fd, write_fd), max_fd)
        run_candidate(job, Link(read_fd, write_fd))
        flush_output()
    except BaseException:
        os._exit(70)
    os._exit(0)


def _enter_job(workdir, resource_limits, out_w, err_w, keep, max_fd):
    os.setsid()
    set_dumpable(1)
    # _signal, not signal: signal.signal's enum conversion (a ValueError formatted) cost a child 0.25 ms
    _signal.signal(_signal.SIGINT, _signal.default_int_handler)
    os.chdir(workdir)
    os.dup2(out_w, 1)
    os.dup2(err_w, 2)
    close_all_but(keep, max_fd)  # the protocol pipes, the other process's ends: all gone
    _reseed_numpy()
    for which, soft, hard in resource_limits:
        resource.setrlimit(which, (soft, hard))


def _reseed_numpy():
    """numpy's global generator, where the server has it (a suite's preload: pandas imports it), would be the
    same in every child: unlike ``random`` it has no at-fork hook. Reseeded from the OS (0.1 ms), each program
    draws its own numbers, as in the original scorers' fresh processes."""
    numpy_random = sys.modules.get("numpy.random")
    if numpy_random is not None:
        try:
            numpy_random.seed()
        except Exception:  # never worth failing the program for: it runs on with the inherited state
            pass


def set_dumpable(flag):
    """PR_SET_DUMPABLE, inherited by every fork. Off in the server and the tests' process: a process of
    the same uid can neither ptrace them nor read their /proc/<pid>/mem, environ or fd/. Back on in the
    program's process, whose /proc/self is then its own again."""
    try:
        libc().prctl(4, flag, 0, 0, 0)
    except Exception:
        pass


def libc():
    """The C library, loaded once (``ctypes``) and inherited by every fork."""
    if not _LIBC:
        import ctypes

        _LIBC.append(ctypes.CDLL(None, use_errno=True))
    return _LIBC[0]


def close_all_but(keep, limit):
    low = 3
    for fd in sorted(keep):
        if fd >= low:
            os.closerange(low, fd)
            low = fd + 1
    os.closerange(low, max(low, limit))
