"""Execution server that runs *inside* the isolation (stdlib only, any Python 3.8+): the job protocol.

In: jobs from the harness on stdin, each a fixed 25-byte head (the sizes of the job and of its trusted
part), the job as JSON, then the trusted part, which only the tests' process reads. Out: one JSON line
per job on stdout (``sandbox.inside.reply``). The server itself never runs untrusted code, and the decision
is never made in a process the program runs in (``sandbox.scorers`` has the table of scorers):

* Printed-value jobs (``strict``, ``mtpb``): the worker's zygote forks one child (``sandbox.inside.zygote``: a
  process forked from the server before any job, so no program inherits memory that held an earlier job), which runs
  the program and sends back what it printed, converted and encoded as plain data (``sandbox.inside.job.printing``).
  The expected value never reaches this process; the harness compares.
* Assert-style and data-driven jobs: the tests run in the worker's tests' process
  (``sandbox.inside.tests_process``, forked from the server before any job, kept between jobs, replaced when
  anything may have touched it); the program runs in a child the zygote forks per job
  (``sandbox.inside.job.candidate``), which answers the tests' calls with plain data over a pair of pipes and can
  reach nothing else.

A program that exits early (``os._exit(0)``, ``sys.exit``, closing stdout, killing itself) has not
answered and fails. After each job, everything it left is killed and its directory emptied
(``sandbox.inside.cleanup``), and every IPC object it made removed (``sandbox.inside.ipc``); a server that cannot
make sure of that exits, and the pool starts a fresh one.

The modules of this package that the server is made of (``sandbox.bytecode.SERVER_MODULES``) are sent to
the interpreter as bytecode, so they import nothing from the project but each other, and the harness
imports them for the codec and the comparisons. They also import as little as they can: every page the
server has mapped is copied into each child's page table at fork and torn down at its exit, which is most
of an execution's cost. Modules that only some jobs need (``ast``) are imported on the first such job,
and error paths import theirs when they happen. The exception is ``COMMON_IMPORTS``, modules that programs
import so often that loading them once here costs less than each program loading its own.
"""

import json
import os
import resource
import signal
import sys
import time

from sandbox.inside.wire.channel import read_exactly
from sandbox.inside.confine.children import rlimits, set_dumpable
from sandbox.inside.cleanup import fresh_workdir, kill_leftovers
from sandbox.inside.ipc import clear_ipc
from sandbox.inside.kernel_counters import KernelCounters
from sandbox.inside.confine.keyrings import shut_keyrings
from sandbox.inside.confine.signal_guard import guards
from sandbox.inside.collect import HarnessGone, collect_calls, collect_printing
from sandbox.inside.reply import reply
from sandbox.inside.confine.syscall_filter import install as install_syscall_filter
from sandbox.inside.tests_process import TestsProcess, changed, process_state
from sandbox.inside.zygote import Zygote, ZygoteGone


# Standard modules that programs often import, imported here once so that each child finds them loaded:
# a child importing ``typing`` itself spent 11 ms of CPU (21 of HumanEval's 164 programs do), against 0.05 ms
# more per fork for having them all mapped. Not ``random``: its at-fork hook would reseed it from os.urandom in
# every child (11 us), used or not (numpy's global generator, which has no such hook, is reseeded by
# ``children`` only where a suite's preload has imported it).
COMMON_IMPORTS = ("typing", "math", "heapq", "bisect", "string", "copy")


class KernelCountersMoved(Exception):
    """A job moved a number the kernel hands out in sequence here (``kernel_counters``): the server must not
    run another job."""


class Server:
    def __init__(self, settings):
        self.is_pid1 = os.getpid() == 1
        set_dumpable(0)
        if settings.get("syscall_filter"):  # before anything is forked: no user namespaces (isolation.py)
            install_syscall_filter(settings["syscall_filter"])
        self.keyrings_shut = shut_keyrings()  # before anything is forked: every process inherits it
        # PID 1 of a namespace gets only the signals it handles: Python's SIGINT handler would let a
        # program end the server with os.kill(1, SIGINT).
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        if not self.is_pid1:
            self._become_subreaper()
        # Keep the protocol pipes on private descriptors; 0/1/2 point at /dev/null between jobs. A child
        # points 1 and 2 at its output pipes and keeps the interpreter's own sys.stdout and sys.stderr,
        # which write to those descriptors and hold nothing: the server never writes to them.
        self.proto_in = os.fdopen(os.dup(0), "rb", buffering=0)
        self.proto_out = os.fdopen(os.dup(1), "wb", buffering=0)
        devnull = os.open(os.devnull, os.O_RDWR)
        for fd in (0, 1, 2):
            os.dup2(devnull, fd)
        os.close(devnull)
        self.work_root = os.environ.get("TMPDIR") or "/tmp"
        # Read-only mounts in /tmp holding the interpreter (see isolation.server_command): not a job's leftovers.
        self.reserved = frozenset(settings.get("reserved_tmp", ()))
        self._leftover = False
        self._sequence = 0
        self._trusted_pending = 0
        self._max_fd = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
        self.workdir = None
        self._workdir_checked = False  # _clean_up has just found (or made) it clean
        self._rlimits = {}
        for module in COMMON_IMPORTS + tuple(settings.get("preload", [])):
            try:
                __import__(module)
            except Exception:
                pass
        self._warm_up()
        self._start_workers(settings)

    def _start_workers(self, settings):
        """Both before the first job: the tests' process, then the zygote every program is forked from, which
        puts the signal guard (naming the tests' process) on itself, and so on every program; then the first job
        directory and the kernel's counters as they start."""
        # Whether no program can change this server, its zygote or its tests' process (limits, niceness,
        # scheduling, a stop): the signal guard refuses those calls on them, the syscall filter refuses the other
        # ABIs' calls that would go around it, and the PID namespace hides them from other workers' programs.
        # Then their state is not read back after every job (about 30 us a job); elsewhere it is.
        guarded = (self.is_pid1 and self.keyrings_shut and bool(settings.get("syscall_filter"))
                   and guards(os.uname().machine))
        self._tests = TestsProcess(self.proto_in.fileno(), self._max_fd, self.work_root, guarded)
        self._zygote = Zygote(self._max_fd, self._tests.pid if self.keyrings_shut else None, guarded)
        self._last_pid = self._zygote.pid  # the last process made in this PID namespace (``_made``)
        self._state = None if guarded else process_state(0)  # checked after every job (``serve``)
        self._counters = None
        self._dirs_made = 0  # job directories made since the counters' last look: inodes of /tmp the server made
        if self.is_pid1:  # /tmp and the IPC namespace are this server's own: their counters start here
            self._fresh_workdir()
            self._workdir_checked = True
            self._counters = KernelCounters(self.work_root)
            self._dirs_made = 0

    @staticmethod
    def _warm_up():
        """Set up here, once, what every child would otherwise set up for itself after the fork: the
        compiler's AST classes (built on the first ``compile``, about 2 ms) and the JSON encoder. A child
        inherits them for free."""
        namespace = {}
        exec(compile("def f(x):\n    return x\nassert f(1) == 1\n", "<warm-up>", "exec"), namespace)
        json.dumps({"passed": True, "status": "passed", "reason": "", "turn": None})

    @staticmethod
    def _become_subreaper():
        try:
            import ctypes

            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER
        except Exception:
            pass

    def serve(self):
        """One job at a time, until the harness closes the pipe."""
        self._send({"ready": True, "pid1": self.is_pid1, "uid": os.getuid(), "keyrings_shut": self.keyrings_shut})
        fd = self.proto_in.fileno()
        while True:
            head = read_exactly(fd, 25)
            body = read_exactly(fd, int(head[:12])) if head else None
            if body is None:
                return
            job = json.loads(body)
            self._trusted_pending = int(head[12:24])
            failed = False
            try:
                result = self.run(job)
            except HarnessGone:
                try:
                    kill_leftovers(None, self.is_pid1)  # the tests' process too: nothing outlives the harness
                finally:
                    os._exit(0)
            except Exception:
                import traceback

                result = {"status": "sandbox_error", "passed": False, "reason": traceback.format_exc()[-500:]}
                failed = True
            result["id"] = job["id"]
            self._send(result)
            if self._trusted_pending or failed:
                os._exit(3)  # the stream (or the zygote's) may be out of step: the pool starts a fresh server
            try:
                self._clean_up()  # after the reply, so the harness's round trip overlaps it; before the next job
            except Exception:
                os._exit(3)  # never run a job in a directory that may not be clean; the pool restarts us
            if self._tests is None or changed(0, self._state):
                # A fresh server (the pool starts one) when the tests' process has ended (killed, timed out or
                # changed: the signal guard that every program inherits from the zygote names it, so a new one
                # needs a new zygote), or when this server's limits, niceness or scheduling changed (a kernel
                # without seccomp lets a program of the same uid do that): every later program would inherit it.
                os._exit(3)

    def _send(self, message):
        self.proto_out.write((json.dumps(message) + "\n").encode())

    def run(self, job):
        """One job, handed to the program's process after its fork (``Zygote.hand_over``)."""
        printing = job["mode"] == "print_value"
        workdir = self.workdir if self._workdir_checked else self._fresh_workdir()
        self._workdir_checked = False
        out_r, out_w = os.pipe()
        err_r, err_w = os.pipe()
        start = time.monotonic()
        pipes = (out_r, out_w, err_r, err_w)
        run = self._run_printing if printing else self._run_calls
        setup = {"workdir": workdir, "limits": self._limits(job["limits"])[0]}
        outcome = run(job, (setup, job), pipes, start)
        outcome["duration"] = round(time.monotonic() - start, 6)
        result = reply(outcome, printing)
        result["cpu_seconds"] = round(outcome["cpu_seconds"], 6)
        return result

    def _limits(self, limits):
        """The program's resource limits and the tests' process's, worked out once per set of limits (the
        same few come back job after job). The tests' process may get more CPU than the program's
        (HumanEval+'s computes the reference's outputs), so that only the program's own time is held to
        the limit measured for it."""
        key = tuple(sorted(limits.items()))
        both = self._rlimits.get(key)
        if both is None:
            tests_limits = dict(limits, cpu_seconds=limits.get("tests_cpu_seconds") or limits["cpu_seconds"])
            both = self._rlimits[key] = (rlimits(limits), rlimits(tests_limits))
        return both

    def _run_printing(self, job, handover, pipes, start):
        out_r, out_w, err_r, err_w = pipes
        res_r, res_w = os.pipe()
        candidate = self._spawn(b"p", (out_w, err_w, res_w), handover)
        for fd in (out_w, err_w, res_w):
            os.close(fd)
        self._leftover = True
        return collect_printing(candidate, out_r, err_r, res_r, job["limits"], start, self.proto_in.fileno())

    def _run_calls(self, job, handover, pipes, start):
        out_r, out_w, err_r, err_w = pipes
        tests_resource_limits = self._limits(job["limits"])[1]
        tests = self._tests
        self._sequence += 1
        tests.start_job(job, self._trusted_pending, self._sequence, tests_resource_limits)
        candidate = self._spawn(b"c", (out_w, err_w, tests.to_program_r, tests.to_tests_w), handover)
        os.close(out_w)
        os.close(err_w)
        self._leftover = True
        outcome = collect_calls(tests, candidate, out_r, err_r, job["limits"], start, self._sequence,
                                self.proto_in.fileno())
        if outcome["tests_ended"]:
            self._tests = None
        if outcome["acknowledged"]:
            self._trusted_pending = 0
        return outcome

    def _spawn(self, kind, fds, handover):
        try:
            child, job_w = self._zygote.spawn(kind, handover[0]["workdir"], fds)
        except ZygoteGone:
            # Killed by the last job's program a moment before that job's clean-up could see it: no reply, so
            # the pool runs this job again on a fresh server.
            os._exit(3)
        self._made(child.pid)
        self._zygote.hand_over(job_w, *handover)
        return child

    def _made(self, pid):
        """Note a process made for a job. In the server's own PID namespace it must have the pid after the last
        one made; otherwise a job's processes forked or started threads in between, and the namespace's pid
        counter, which the next program reads as its own pid, carries what they chose. The server then exits
        before that program is handed its job (no reply: the pool runs the job again on a fresh server)."""
        if self.is_pid1 and pid != self._last_pid + 1:
            os._exit(3)
        self._last_pid = pid

    def _clean_up(self):
        if self._leftover:
            self._tests = kill_leftovers(self._tests, self.is_pid1, self._zygote.pid)
            if not self._zygote.intact():
                raise ZygoteGone("the zygote was killed or changed")
            if self.is_pid1:  # then the IPC namespace is this server's own (bubblewrap's --unshare-ipc)
                clear_ipc()
            self._leftover = False
            self._fresh_workdir()
            self._workdir_checked = True
            made, self._dirs_made = self._dirs_made, 0
            if self._counters is not None and self._counters.moved(made):
                raise KernelCountersMoved("the last job made files or IPC objects: a fresh server")

    def _fresh_workdir(self):
        self.workdir = fresh_workdir(self.workdir, self.work_root, self.reserved, self.is_pid1)
        self._dirs_made += 1
        return self.workdir


def main():
    settings = json.loads(sys.argv[1]) if len(sys.argv) > 1 else {}
    Server(settings).serve()
