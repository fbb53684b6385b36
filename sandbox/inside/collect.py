"""Watching a running job: its output, its end, its limits.

In: the pipes of a job's processes, their pids, the job's wall-clock deadline and output cap. Out: an
outcome: what the program wrote on stdout and stderr, the report (what it printed, or the tests' verdict),
which limit killed it if any, and the wait status and CPU time of the program's process. Exits are watched
through pidfds where the kernel has them (Linux 5.3+), so nothing polls.
"""

import os
import select
import signal
import time

from sandbox.inside.wire.channel import MAX_FRAME

EXIT_GRACE_SECONDS = 0.2
REPORT_BYTES = 1 << 20  # the most a printed-value job's report may hold


def pidfd_open(pid):
    """A descriptor that becomes readable when ``pid`` exits (Linux 5.3+), or None."""
    try:
        return os.pidfd_open(pid)
    except (AttributeError, OSError):
        return None


class HarnessGone(Exception):
    """The harness's end of the protocol pipe closed during a job (its pool was closed, or it was killed):
    nobody will read the verdict, so the job is not waited for (a program may have its whole wall-clock limit
    left)."""


class Watch:
    """The poll loop both kinds of job share. ``pipes`` are read into ``buffers`` until they close;
    ``handlers`` take the other descriptors (pidfds, the tests' report). Once the job has ended
    (``ended_at``: the program's exit, the tests' report), pipes still open get a short grace: processes
    the program left behind hold them, and die with the execution anyway."""

    def __init__(self, pipes, capped, deadline, cap, harness_fd):
        self.buffers = dict((fd, bytearray()) for fd in pipes)
        self.open = len(pipes)
        self.capped = capped  # the pipes whose total is held to ``cap`` (stdout and stderr)
        self.deadline = deadline
        self.cap = cap
        self.handlers = {}
        self.poller = select.poll()
        for fd in pipes:
            self.poller.register(fd, select.POLLIN)
        self.poller.register(harness_fd, 0)  # only its hang-up: the tests' process reads the data on it
        self.handlers[harness_fd] = _harness_gone
        self.ended_at = None
        self.killed_for = None

    def on(self, fd, handler):
        if fd is not None:
            self.poller.register(fd, select.POLLIN)
            self.handlers[fd] = handler

    def forget(self, fd):
        self.poller.unregister(fd)

    def end(self):
        self.ended_at = time.monotonic()

    def run(self, until_closed, stop_after_round):
        """Until the job has ended and its pipes closed or had their grace (or, ``until_closed``, all pipes
        closed), ``stop_after_round()`` says so, or a limit is hit (``killed_for``)."""
        while self.open or not until_closed:
            now = time.monotonic()
            if self.ended_at is not None and (not self.open or now > self.ended_at + EXIT_GRACE_SECONDS):
                return
            if now >= self.deadline:
                self.killed_for = "timeout"
                return
            wait = min(self.deadline - now, 0.5 if self.ended_at is None else EXIT_GRACE_SECONDS)
            for fd, _ in self.poller.poll(wait * 1000):
                handler = self.handlers.get(fd)
                if handler is not None:
                    handler(fd)
                    continue
                chunk = os.read(fd, 65536)
                if not chunk:
                    self.poller.unregister(fd)
                    self.open -= 1
                    continue
                self.buffers[fd] += chunk
            if stop_after_round():
                return
            if sum(len(self.buffers[fd]) for fd in self.capped) > self.cap:
                self.killed_for = "output_limit"
                return

    def close(self):
        for fd in self.buffers:
            os.close(fd)


def _harness_gone(fd):
    raise HarnessGone()


def collect_printing(child, out_r, err_r, res_r, limits, start, harness_fd):
    """A printed-value job: read the pipes until they close and the program's process (``child``, see
    ``sandbox.inside.zygote``) has exited, or a limit is hit. The report belongs to the process that exited."""
    watch = Watch((out_r, err_r, res_r), (out_r, err_r), start + float(limits["wall_seconds"]),
                  int(limits["output_bytes"]), harness_fd)
    pid, pidfd = child.pid, child.pidfd

    def exited(fd):
        watch.forget(fd)
        watch.end()

    def report_too_big():
        if len(watch.buffers[res_r]) > REPORT_BYTES:
            watch.killed_for = "output_limit"
            return True
        return False

    watch.on(pidfd, exited)
    watch.run(True, report_too_big)
    if watch.killed_for is not None or watch.ended_at is not None:
        kill_group(pid)
    status, cpu_seconds = child.wait(watch.deadline + 1.0)
    child.close()
    watch.close()
    return {"killed_for": watch.killed_for, "wait_status": status, "cpu_seconds": cpu_seconds,
            "stdout": bytes(watch.buffers[out_r]), "stderr": bytes(watch.buffers[err_r]),
            "result": bytes(watch.buffers[res_r])}


def collect_calls(tests, candidate, out_r, err_r, limits, start, sequence, harness_fd):
    """Read the program's output and the tests' report until the report is complete (then the program's
    process is killed and its pipes get a short grace), a limit is hit, or the tests' process ends. When
    the program's process exits first, the tests' process is told, so that a call waiting for an answer
    fails at once. ``tests_ended``: the tests' process was ended (it may be anywhere): a new one is due."""
    watch = Watch((out_r, err_r), (out_r, err_r), start + float(limits["wall_seconds"]), int(limits["output_bytes"]),
                  harness_fd)
    report = bytearray()
    state = {"tests_ended": False}
    candidate_pidfd = candidate.pidfd

    def candidate_exited(fd):
        watch.forget(fd)
        tests.candidate_gone(sequence)

    def tests_exited(fd):
        watch.forget(fd)
        state["tests_ended"] = True

    def report_arrives(fd):
        chunk = os.read(fd, 65536)
        if not chunk:
            state["tests_ended"] = True
            return
        report.extend(chunk)
        if len(report) >= 4 and len(report) >= 4 + int.from_bytes(report[:4], "big"):
            watch.forget(fd)
            watch.end()
            kill_group(candidate.pid)

    def tests_gone():
        return (state["tests_ended"] and watch.ended_at is None) or len(report) > MAX_FRAME

    watch.on(tests.res_r, report_arrives)
    watch.on(candidate_pidfd, candidate_exited)
    watch.on(tests.pidfd, tests_exited)
    watch.run(False, tests_gone)
    reported = watch.ended_at is not None and len(report) <= MAX_FRAME
    kill_group(candidate.pid)
    candidate_status, cpu_seconds = candidate.wait(watch.deadline + 1.0)
    candidate.close()
    acknowledged = tests.acknowledged()
    status = 0
    if watch.killed_for is not None or not reported:  # the tests' process may be anywhere: a new one
        status = tests.end()
    watch.close()
    return {"killed_for": watch.killed_for, "wait_status": status, "candidate_status": candidate_status,
            "cpu_seconds": cpu_seconds, "stdout": bytes(watch.buffers[out_r]), "stderr": bytes(watch.buffers[err_r]),
            "acknowledged": acknowledged, "tests_ended": watch.killed_for is not None or not reported,
            "result": bytes(report[4:]) if reported else b""}


def kill_group(pid):
    for target in (lambda: os.killpg(pid, signal.SIGKILL), lambda: os.kill(pid, signal.SIGKILL)):
        try:
            target()
        except OSError:
            pass


def wait_for(pid, pidfd, deadline):
    """The process's wait status and CPU time (user and system, what its limit counts: time limits are
    measured from the reference's)."""
    while True:
        done, status, usage = os.wait4(pid, os.WNOHANG)
        if done:
            return status, usage.ru_utime + usage.ru_stime
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            kill_group(pid)
            _, status, usage = os.wait4(pid, 0)
            return status, usage.ru_utime + usage.ru_stime
        if pidfd is not None:
            select.select([pidfd], [], [], remaining)
        else:
            time.sleep(0.001)
