"""A pool of execution servers, one per worker, each inside the isolation layers.

Each worker thread owns one server process; jobs are handed out from a shared queue. If a server dies
(a hostile program may manage that where no PID namespace protects it), the job it was running is
reported as ``sandbox_error`` and a fresh server is started for the next job, so one sample can never
change another's verdict.
"""

from __future__ import annotations

import collections
import itertools
import json
import logging
import os
import queue
import subprocess
import threading
from collections.abc import Iterable, Iterator
from dataclasses import asdict
from typing import Any

from sandbox.bytecode import server_bytecode
from sandbox.isolation import (IsolationReport, SandboxUnavailable, default_sandbox_python, drop_root_for_programs,
                               probe, scrubbed_environment, server_command)
from sandbox.jobs import Execution, Job, Limits
from sandbox.scorers import scorer_for
from sandbox.uids import UidClaims

log = logging.getLogger(__name__)


class PoolClosed(RuntimeError):
    """The pool has been closed: it starts no server and runs no job any more."""


class _Server:
    def __init__(self, argv: list[str], env: dict[str, str], bytecode: bytes, keep_fds: tuple[int, ...] = ()):
        # ``keep_fds``: the lock of the worker's uid (``sandbox.uids``), held by the server too while it lives.
        self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                     env=env, start_new_session=True, pass_fds=keep_fds)
        try:
            self.proc.stdin.write(bytecode)
            self.proc.stdin.flush()
        except OSError:
            pass  # it died before reading: reported below
        hello = self.proc.stdout.readline()
        if not hello:
            self.close()
            raise RuntimeError(f"execution server failed to start: {' '.join(argv[:3])} ...")
        if not json.loads(hello).get("keyrings_shut"):
            log.warning("sandbox: the kernel refused the seccomp filter that shuts keyrings: a key a program "
                        "adds can reach later programs")

    def run(self, payload: dict[str, Any], trusted: bytes) -> dict[str, Any] | None:
        """One job: a 25-byte head with both sizes, the job, then the part only the tests' process reads."""
        body = json.dumps(payload).encode()
        try:
            self.proc.stdin.write(b"%012d%012d\n" % (len(body), len(trusted)) + body + trusted)
            self.proc.stdin.flush()
            line = self.proc.stdout.readline()
        except (OSError, ValueError):  # ValueError: closed meanwhile by ``close`` in another thread
            return None
        return json.loads(line) if line else None

    def close(self) -> None:
        """End the server. Killing the process started (bubblewrap) is not enough: once ``setpriv`` has
        changed the server's uid, bubblewrap's --die-with-parent no longer reaches it. Closing its stdin
        is: on that hang-up it ends its job, its processes and itself (``sandbox.inside.server``)."""
        try:
            self.proc.stdin.close()
        except OSError:  # what was left in the buffer cannot reach a server that has died
            pass
        try:
            self.proc.kill()
        except OSError:
            pass
        self.proc.wait()


# A known-good program that every pool runs once, through every layer, before it is used: a sandbox that
# cannot run programs (an interpreter hidden by a mount, a missing library) must stop the run at once, not
# score every sample as a failure of the model.
CANARY = Job(program="def double(x):\n    return 2 * x\n", mode="assert",
             limits=Limits(wall_seconds=60, cpu_seconds=30), test="def check(candidate):\n    assert candidate(2) == 4\n",
             entry_point="double")


class SandboxPool:
    """Runs jobs in parallel workers. Use as a context manager."""

    def __init__(self, workers: int = 2, mode: str = "auto", python: str | None = None,
                 preload: Iterable[str] = ("numpy",), tmpfs_mb: int = 512):
        self.workers = max(1, workers)
        self.python = python or default_sandbox_python()
        self.isolation: IsolationReport = probe(mode)
        server_bytecode(self.python)  # an interpreter that cannot run the server is refused here, not per job
        drop_root_for_programs(self.isolation, self.python)
        self.settings = {"preload": list(preload)}
        self.tmpfs_mb = tmpfs_mb
        self._servers: dict[int, _Server] = {}
        self._uids = UidClaims()
        # ``close`` may come while workers start servers (Ctrl-C at the first verdict), or from a signal handler
        # in the thread that holds the lock: reentrant.
        self._lock = threading.RLock()
        self._closed = False
        self._threads: list[threading.Thread] = []
        self._limit_dicts: dict[Limits, dict[str, Any]] = {}
        self._job_ids = itertools.count()
        self.servers_replaced = 0  # servers found dead (or ended by a supervisor) and replaced
        layers = self.isolation.layers
        # RLIMIT_NPROC counts every process of a uid: without a PID namespace or a uid of their own,
        # programs get what already runs plus their budget, counted per job.
        self._counts_user_processes = not layers["pid_namespace"] and os.geteuid() != 0
        self._nproc_binds = not (os.geteuid() == 0 and not layers["unprivileged_uid"])  # root ignores it
        self._run_canary()

    def _run_canary(self) -> None:
        try:
            execution = self.run_one(CANARY)
        except Exception as exc:  # the server cannot start at all
            self.close()
            raise SandboxUnavailable(f"the sandbox cannot run programs: {exc}") from exc
        if not execution.passed:
            self.close()
            detail = (execution.reason or execution.stderr.strip() or "no output").splitlines()[-1]
            raise SandboxUnavailable(f"the sandbox cannot run programs: a known-good test program ended as "
                                     f"{execution.status} ({detail}) with python {self.python!r} and layers "
                                     f"{', '.join(n for n, on in self.isolation.layers.items() if on)}")

    def __enter__(self) -> "SandboxPool":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """End every server and wait for the workers of ``run_many`` (one starting a server ends it once it
        has started: bubblewrap killed while it sets up leaves its sandbox's first process behind, blocked
        for good). When it returns nothing of the pool runs, and no job or server is started afterwards."""
        with self._lock:
            self._closed = True
            servers = list(self._servers.values())
            self._servers.clear()
        for server in servers:
            server.close()  # a worker waiting on it gets no reply, then PoolClosed: a sandbox_error, never a verdict
        self._join_workers()
        self._uids.release()  # every server has ended: its uid is free for other commands

    def _server(self, worker: int) -> _Server:
        """The worker's server, started if it has none. One that has died is found by ``run_one``
        (no reply) and replaced there."""
        server = self._servers.get(worker)
        if server is None:
            if self._closed:
                raise PoolClosed("the sandbox pool is closed")
            slot, keep_fds = self._uids.slot(worker)
            argv = server_command(self.isolation, self.python, slot, self.settings, self.tmpfs_mb)
            server = _Server(argv, scrubbed_environment(), server_bytecode(self.python), keep_fds)
            with self._lock:
                closed = self._closed
                if not closed:
                    self._servers[worker] = server
            if closed:  # closed while it started
                server.close()
                raise PoolClosed("the sandbox pool is closed")
        return server

    def _forget(self, worker: int) -> None:
        with self._lock:
            server = self._servers.pop(worker, None)
        if server is not None:
            self.servers_replaced += 1
            server.close()

    def server_pid(self, worker: int) -> int | None:
        """The pid of the process started for ``worker``'s server, or None: a supervisor (``harness.serve``) that
        finds a job overdue (a server stopped by a signal never answers) kills that process's tree, and
        ``run_one`` then runs the job once more on a fresh server."""
        server = self._servers.get(worker)
        return server.proc.pid if server is not None else None

    def _limits_for_host(self, limits: Limits) -> dict[str, Any]:
        """The limits as the server applies them (shared between jobs: read, never changed)."""
        if self._counts_user_processes:
            return {**asdict(limits), "processes": _processes_of_this_user() + limits.processes}
        data = self._limit_dicts.get(limits)
        if data is None:
            data = self._limit_dicts[limits] = {**asdict(limits),
                                                "processes": limits.processes if self._nproc_binds else 0}
        return data

    def run_one(self, job: Job, worker: int = 0) -> Execution:
        scorer = scorer_for(job)
        payload, trusted = scorer.crossing(job)
        payload.update(id=str(next(self._job_ids)), limits=self._limits_for_host(job.limits))
        # A server may end between jobs (it exits when it cannot guarantee a clean directory), so a job
        # whose server is found dead runs once more on a fresh one before it counts as a sandbox error.
        for _attempt in range(2):
            reply = self._server(worker).run(payload, trusted)
            if reply is not None:
                break
            self._forget(worker)
        if reply is None:
            return Execution(False, "sandbox_error", "the execution server died while running this program",
                             None, "", "", 0.0)
        decision = scorer.decide(job, reply)
        return Execution(passed=decision.passed, status=decision.status, reason=utf8(decision.reason),
                         turn=decision.turn, stdout=utf8(reply.get("stdout", "")), stderr=utf8(reply.get("stderr", "")),
                         duration=float(reply.get("duration", 0.0)), tiers=decision.tiers,
                         cpu_seconds=_seconds(reply.get("cpu_seconds")), line=decision.line)

    def run_many(self, jobs: Iterable[tuple[Any, Job]]) -> Iterator[tuple[Any, Execution]]:
        """Run ``(key, job)`` pairs across the workers; yields ``(key, execution)`` as they finish. A caller that
        stops early (Ctrl-C, its own error) leaves the workers to finish the jobs they hold, and no other."""
        self._join_workers()  # an abandoned earlier call's: one job at a time per server
        todo = collections.deque(jobs)  # popleft is atomic: the workers share it without a lock
        done: queue.SimpleQueue = queue.SimpleQueue()
        count = len(todo)

        def work(worker: int) -> None:
            while True:
                try:
                    key, job = todo.popleft()
                except IndexError:
                    return
                try:
                    execution = self.run_one(job, worker)
                except Exception as exc:  # a server that cannot start, a closed pool: report, never hang the caller
                    execution = Execution(False, "sandbox_error", str(exc), None, "", "", 0.0)
                done.put((key, execution))

        try:
            for worker in range(min(self.workers, count)):  # one at a time: Ctrl-C may come between two starts
                thread = threading.Thread(target=work, args=(worker,), daemon=True)
                thread.start()
                self._threads.append(thread)  # only once started: ``close`` joins it
            for _ in range(count):
                yield done.get()
        finally:
            todo.clear()
        self._join_workers()

    def _join_workers(self) -> None:
        threads, self._threads = self._threads, []
        for thread in threads:
            thread.join()


def utf8(text: str) -> str:
    """Text the program words (an exception's message or class name, what it wrote to its channel) with
    any lone surrogate escaped (``\\ud800``): the server's JSON carries them, and samples.jsonl (UTF-8), a
    tokenizer or an HTTP backend would fail on them, losing the run."""
    if text.isascii():
        return text
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def _processes_of_this_user() -> int:
    uid = os.getuid()
    count = 0
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if os.stat(f"/proc/{entry}").st_uid == uid:
                    count += 1
            except OSError:
                pass
    return count


def _seconds(value: Any) -> float | None:
    return float(value) if type(value) in (int, float) else None
