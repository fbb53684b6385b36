"""The worker's zygote: the process every program's process is forked from, which never holds any job.

In (from the server, per job, on a socket pair): the kind of child (printed-value or code prompt), the job
directory (the server's, made anew for each job under the same name) and the descriptors the child gets, its job
pipe first. Out: the child's pid and a pidfd for it. Where it can (``cheap_fork.ForkBeside``), the zygote forks
the child as the server's own child (``clone`` with ``CLONE_PARENT``), and the server waits for it itself;
elsewhere the zygote is its parent and reports, once it has reaped it, its wait status and CPU time. The zygote
is forked from the server before the first job and the child reads its job (the program and its limits) from its
job pipe after the fork, so no job's program, printed values or tests' reasons ever enter the memory a program
inherits: a program can read all of its own memory (``/proc/self/mem``), and the server that relays every job
holds all of that in freed memory. A zygote that dies or is changed (where no signal guard stops it, a program of
the same uid may kill, stop or ``prlimit`` it) cannot be replaced by a fork of the server: the server then exits,
and the pool starts a fresh one.
"""

import _socket
import array
import gc
import marshal
import os
import select
import signal
import struct
import time

from sandbox.inside.cheap_fork import ForkBeside, plug_allocator_holes, warm_up
from sandbox.inside.confine.children import candidate_child, close_all_but, printing_child
from sandbox.inside.collect import kill_group, pidfd_open, wait_for
from sandbox.inside.confine.signal_guard import guard_worker
from sandbox.inside.wire.channel import read_exactly
from sandbox.inside.tests_process import changed, process_state

_LENGTH = struct.Struct("=Q")  # the size of the marshalled job that follows on the job pipe
# pid, then (the zygote is its parent) 1 or (the server is) 0; the zygote's report: pid, wait status, CPU seconds
_REPORT = struct.Struct("=iid")
REPORT_SECONDS = 5.0  # how long a killed child's report may take once its deadline has passed
_RIGHTS = (_socket.SOL_SOCKET, _socket.SCM_RIGHTS)


class ZygoteGone(Exception):
    """The zygote has died or cannot be reached: the server must not run another job."""


class Zygote:
    """The server's handle on its zygote."""

    def __init__(self, max_fd, tests_pid, guarded):
        """``tests_pid``: the tests' process the signal guard names (None: no guard, where seccomp fails);
        ``guarded``: no program can reach the zygote (the server's filters, see ``Server.__init__``), so ``intact``
        only asks whether it lives."""
        ours, theirs = _socket.socketpair(_socket.AF_UNIX, _socket.SOCK_SEQPACKET, 0)
        harness = os.getppid()
        self.pid = os.fork()
        if self.pid == 0:
            try:
                close_all_but((theirs.fileno(),), max_fd)  # the protocol pipes too: nothing of a job reaches it
                if tests_pid is not None:
                    guard_worker(tests_pid, harness)
                fork_beside = ForkBeside()
                warm_up()
                plug_allocator_holes()
                _serve(theirs, max_fd, fork_beside)
            except BaseException:
                os._exit(70)
            os._exit(0)
        theirs.close()
        self.socket = ours
        self.state = None if guarded else process_state(self.pid)
        self.broken = False

    def spawn(self, kind, workdir, fds):
        """Fork a child (``kind``: b"p" printed-value, b"c" code prompt) whose ``HOME`` and ``TMPDIR`` are
        ``workdir`` and that gets ``fds`` (the caller keeps and closes its own copies). The ``Child``, and the
        write end of its job pipe, for ``hand_over``: the child waits for its job there."""
        job_r, job_w = os.pipe()
        try:
            self.socket.sendmsg([kind + os.fsencode(workdir)], [_RIGHTS + (array.array("i", (job_r,) + tuple(fds)),)])
            message, ancillary, _, _ = self.socket.recvmsg(_REPORT.size, _socket.CMSG_SPACE(4))
        except OSError:
            message = None
        finally:
            os.close(job_r)
        if not message:
            os.close(job_w)
            raise ZygoteGone("the zygote has died")
        pidfd = None
        for level, kind_, data in ancillary:
            if (level, kind_) == _RIGHTS:
                pidfd = array.array("i", data[:4])[0]
        pid, reported, _ = _REPORT.unpack(message)
        return Child(self, pid, pidfd, reported), job_w

    @staticmethod
    def hand_over(job_w, setup, job):
        """Send the child its ``setup`` (directory, resource limits) and its ``job``, marshalled: the child
        decodes it in one call of C, where JSON's decoder ran its Python code, cold, in every child (0.19 ms and
        68 copied pages a job, against 0.06 ms and 21; benchmarks/perf/RESULTS.md, session 11)."""
        data = marshal.dumps((setup, job))
        data = memoryview(_LENGTH.pack(len(data)) + data)
        try:
            while data:  # the child reads it as it comes: a job larger than the pipe does not block for good
                data = data[os.write(job_w, data):]
        except OSError:  # the child died before reading it all: it reports nothing, and fails
            pass
        os.close(job_w)

    def intact(self):
        """Whether it is alive, has answered and, where programs could reach it, is unchanged (limits, niceness,
        scheduling; a stop is undone)."""
        if self.broken:
            return False
        try:
            return not changed(self.pid, self.state) and os.waitpid(self.pid, os.WNOHANG)[0] == 0
        except OSError:
            return False


class Child:
    """A process the zygote forked for a job: its pid, a pidfd (None where the kernel has none), and its end;
    ``reported``: the zygote is its parent and reports how it ended (else the server is, and waits for it)."""

    def __init__(self, zygote, pid, pidfd, reported):
        self.zygote, self.pid, self.pidfd, self.reported = zygote, pid, pidfd, reported

    def wait(self, deadline):
        """Its wait status and CPU time; killed at ``deadline`` if still running. Where the zygote reaps it, a
        zygote that a program stopped is continued; one that stays silent is marked broken (the server then
        exits after this job), and one that has died leaves the child to the server (reparented to it)."""
        if not self.reported:
            return wait_for(self.pid, self.pidfd, deadline)
        zygote = self.zygote
        for wait_until in (deadline, None):
            _continue(zygote.pid)
            wait_until = wait_until or time.monotonic() + REPORT_SECONDS
            if select.select([zygote.socket], [], [], max(0.0, wait_until - time.monotonic()))[0]:
                break
            kill_group(self.pid)  # past the deadline: once it has died, its report comes at once
        else:
            zygote.broken = True
            return signal.SIGKILL, 0.0
        message = zygote.socket.recv(_REPORT.size)
        if message:
            return _REPORT.unpack(message)[1:]
        try:
            return wait_for(self.pid, self.pidfd, deadline)
        except ChildProcessError:  # reaped by the zygote before it died: how it ended is unknown
            return signal.SIGKILL, 0.0

    def close(self):
        if self.pidfd is not None:
            os.close(self.pidfd)


def _continue(pid):
    """Undo a stop a program's process may have sent the zygote (same uid), so that it can report."""
    try:
        os.kill(pid, signal.SIGCONT)
    except OSError:
        pass


def _serve(sock, max_fd, fork_beside):
    """The zygote's loop: one child at a time, until the server closes its end. The job directory goes into
    ``os.environ`` here, where it changes (rarely: the server reuses a clean one), not in every child, where
    setting it ran ``os``'s Python code cold and copied 30 pages."""
    while True:
        message, ancillary, _, _ = sock.recvmsg(1 + 4096, _socket.CMSG_SPACE(8 * 4))
        if not message:
            return
        message, workdir = message[:1], os.fsdecode(message[1:])
        if os.environ.get("HOME") != workdir or os.environ.get("TMPDIR") != workdir:
            os.environ["HOME"] = os.environ["TMPDIR"] = workdir
        fds = [fd for level, kind, data in ancillary if (level, kind) == _RIGHTS
               for fd in array.array("i", data[:len(data) - len(data) % 4])]
        gc.freeze()  # objects the child inherits are not touched by its collector: fewer copied pages
        pid = fork_beside()
        reported = pid is None
        if reported:
            pid = os.fork()
        if pid == 0:
            _child(message, fds, max_fd)
        pidfd = pidfd_open(pid)  # before it can be reaped: the server watches its exit through it
        for fd in fds:
            os.close(fd)
        sock.sendmsg([_REPORT.pack(pid, reported, 0.0)],
                     [_RIGHTS + (array.array("i", [pidfd]),)] if pidfd is not None else [])
        if pidfd is not None:
            os.close(pidfd)
        if reported:
            _reap(sock, pid)


def _reap(sock, pid):
    """Wait for the child and report how it ended, in a frame of its own: the next child is forked on this
    loop's stack and can read every frame's locals, where a wait status or CPU time left bound would carry what
    its program chose (an exit code, a peak of memory) to the next program."""
    _, status, usage = os.wait4(pid, 0)
    sock.send(_REPORT.pack(pid, status, usage.ru_utime + usage.ru_stime))


def _child(kind, fds, max_fd):
    """The job's process, from the fork to its program: it reads its job, then becomes what the server used to
    fork (``sandbox.inside.confine.children``)."""
    try:
        job_r, fds = fds[0], fds[1:]
        setup, job = marshal.loads(read_exactly(job_r, _LENGTH.unpack(read_exactly(job_r, _LENGTH.size))[0]))
        os.close(job_r)
        workdir = setup["workdir"]
        limits = [tuple(triple) for triple in setup["limits"]]
    except BaseException:
        os._exit(70)
    if kind == b"p":
        printing_child(job, workdir, limits, *fds, max_fd)
    candidate_child(job, workdir, limits, *fds, max_fd)
