"""The worker's tests' process: the server's handle on it, and the loop it runs.

In (per job, from the server): the job's mode, limits and sequence number on a control pipe, and the
job's trusted part (tests, helpers, inputs), read straight from the protocol pipe so that the server never
holds it. Out: one report frame per job on its result pipe (``sandbox.inside.job.checking`` decides), one byte on its
acknowledgement pipe once the trusted part is read.
"""

import ctypes
import json
import os
import resource
import select
import signal
import struct
import sys

from sandbox.inside.wire.channel import Link, read_exactly
from sandbox.inside.job.checking import run_tests
from sandbox.inside.confine.children import close_all_but, libc
from sandbox.inside.collect import pidfd_open


class TestsProcess:
    """The worker's tests' process, kept between jobs (a fork per job would cost as much as the program's
    own). It is forked from the server before any job: it holds the server's code and nothing of any job
    but the one it runs. Per job it reads its trusted part from the protocol pipe, runs the tests against
    the program's process over the channel, and writes one report frame. It is in its own session, not
    dumpable, in ``/`` with no writable directory on ``sys.path``; if it ends or may be in a bad state
    (killed by a time limit, changed by a program) the server ends it and then itself: the signal guard that
    every program inherits from the zygote names this process, so a new one needs a fresh server."""

    def __init__(self, proto_fd, max_fd, work_root, guarded):
        """``guarded``: no program can reach this process (the server's filters, see ``Server.__init__``), so
        ``tampered`` looks only at the pipes it shares with them."""
        control_r, self.control_w = os.pipe()
        self.ack_r, ack_w = os.pipe()
        self.res_r, res_w = os.pipe()
        self.to_program_r, to_program_w = os.pipe()
        to_tests_r, self.to_tests_w = os.pipe()
        self.to_tests_r = os.dup(to_tests_r)  # the server's copy, to empty the pipe between jobs
        keep = (proto_fd, control_r, ack_w, res_w, to_program_w, to_tests_r)
        self.pid = os.fork()
        if self.pid == 0:
            try:
                os.setsid()
                close_all_but(keep, max_fd)
                signal.signal(signal.SIGINT, signal.SIG_DFL)
                os.chdir("/")
                root = os.path.abspath(work_root)
                sys.path[:] = [p for p in sys.path if p and not os.path.abspath(p).startswith(root)]
                tests_main(keep)
            except BaseException:
                os._exit(70)
            os._exit(0)
        for fd in (control_r, ack_w, res_w, to_program_w, to_tests_r):
            os.close(fd)
        self.pidfd = pidfd_open(self.pid)
        self.control = Link(None, self.control_w)
        self.state = None if guarded else process_state(self.pid)
        self.pipes = pipe_state((self.to_program_r, self.to_tests_w))
        self.times = {fd: (info.st_atime_ns, info.st_mtime_ns)
                      for fd, info in ((fd, os.fstat(fd)) for fd in (self.to_program_r, self.to_tests_w))}

    def tampered(self):
        """Whether a finished job's processes changed it (lowered its limits, reniced it) or the channel's
        pipes (a program shares their open file descriptions: ``O_NONBLOCK``, ``O_ASYNC``, packet mode, a
        smaller pipe): then it is replaced, with new pipes, so that one program cannot slow or break the next
        program or its tests. A stop is undone. Where no program can reach it, only the pipes are looked at."""
        try:
            return changed(self.pid, self.state) or pipe_state((self.to_program_r, self.to_tests_w)) != self.pipes
        except OSError:
            return True

    def start_job(self, job, trusted_size, sequence, resource_limits):
        self.control.send({"job": {"mode": job["mode"]}, "size": trusted_size, "sequence": sequence,
                           "limits": [[which, soft] for which, soft, _ in resource_limits
                                      if which in (resource.RLIMIT_AS, resource.RLIMIT_CPU)]})

    def candidate_gone(self, sequence):
        try:
            self.control.send({"gone": sequence})
        except OSError:
            pass

    def acknowledged(self):
        """Whether the job's trusted part was read (one byte per job on the ack pipe)."""
        if not select.select([self.ack_r], [], [], 0)[0]:
            return False
        return os.read(self.ack_r, 1) == b"k"

    def drain(self):
        """Empty the channel, drop the locks a program took on it (``flock``, ``F_OFD_SETLK`` over a range of
        its choice: both belong to the open file descriptions it shares, so they outlive it, and a later program
        sees them) and set its pipes' times back: nothing a finished job's processes wrote or set may reach the
        next job."""
        for fd in (self.to_tests_r, self.to_program_r):
            while select.select([fd], [], [], 0)[0]:
                os.read(fd, 1 << 16)
        c = libc()
        for fd in (self.to_program_r, self.to_tests_w):
            c.flock(fd, 8)  # LOCK_UN
            c.fcntl(fd, 37, _UNLOCK_ALL)  # F_OFD_SETLK
            # Its times back as they were made: a program may set them to any values (``futimens``), and some
            # kernels move them at every read and write, so that comparing them would replace this process
            # after every job.
            os.utime(fd, ns=self.times[fd])

    def end(self):
        """Kill it; its wait status."""
        for kill in (lambda: os.killpg(self.pid, signal.SIGKILL), lambda: os.kill(self.pid, signal.SIGKILL)):
            try:
                kill()
            except OSError:
                pass
        try:
            status = os.waitpid(self.pid, 0)[1]
        except ChildProcessError:
            status = 0
        self.closed()
        return status

    def closed(self):
        for fd in (self.control_w, self.ack_r, self.res_r, self.to_program_r, self.to_tests_w, self.to_tests_r,
                   self.pidfd):
            if fd is not None:
                try:
                    os.close(fd)
                except OSError:
                    pass


# struct flock: F_UNLCK (2) from byte 0 to the end, for F_OFD_SETLK (type, whence, start, length, pid).
_UNLOCK_ALL = ctypes.create_string_buffer(struct.pack("hhqqi4x", 2, 0, 0, 0, 0), 32)
_HINT = ctypes.c_uint64()  # F_GET_RW_HINT's answer, written through its address
_LIMITS = tuple(getattr(resource, name) for name in dir(resource) if name.startswith("RLIMIT_"))


def changed(pid, state):
    """Whether process ``pid`` (0: this one) is no longer in ``state``, what ``process_state`` found at its start,
    a stop undone first; never where ``state`` is None (no program can reach the process: nothing was kept)."""
    if state is None:
        return False
    if pid:
        os.kill(pid, signal.SIGCONT)
    return process_state(pid) != state


def process_state(pid):
    """What a process of the same uid can change in another (``pid``; 0 is this one): its resource limits
    (prlimit), niceness, scheduling policy (``SCHED_IDLE`` needs no privilege) and CPU affinity. Children
    forked later inherit all of it."""
    limits = tuple(resource.prlimit(pid, which) for which in _LIMITS)
    return (limits, os.getpriority(os.PRIO_PROCESS, pid), os.sched_getscheduler(pid), os.sched_getparam(pid),
            os.sched_getaffinity(pid))


def pipe_state(fds):
    """What a process holding these pipe ends can change that outlives it: the open file description's
    status flags (``F_GETFL``), owner and signal (``F_SETOWN``, ``F_SETSIG``: they do nothing without
    ``O_ASYNC``, which the flags show, but a later program reads them back) and the pipe's size
    (``F_GETPIPE_SZ``); and the pipe's inode, the sandbox uid's, whose mode (``fchmod``), group and write-life
    hint (``F_SET_RW_HINT``) a later program reads back (``fstat``, ``F_GET_RW_HINT``); its times are set back
    instead (``TestsProcess.drain``). Through the C library, already loaded: importing ``fcntl`` would grow the
    server that every job forks."""
    fcntl = libc().fcntl
    state = []
    for fd in fds:
        info = os.fstat(fd)
        _HINT.value = 0
        fcntl(fd, 1035, ctypes.byref(_HINT))  # F_GET_RW_HINT (an error leaves 0: a kernel without hints)
        # F_GETFL, F_GETPIPE_SZ, F_GETOWN, F_GETSIG
        state.append((fcntl(fd, 3, 0), fcntl(fd, 1032, 0), fcntl(fd, 9, 0), fcntl(fd, 11, 0), _HINT.value,
                      info.st_mode, info.st_uid, info.st_gid))
    return tuple(state)


def tests_main(fds):
    """The tests' process's loop: one job at a time, until the server closes the control pipe."""
    proto_in, control_r, ack_w, res_w, to_program_w, to_tests_r = fds
    control = Link(control_r, None)
    original = dict((which, resource.getrlimit(which)) for which in (resource.RLIMIT_AS, resource.RLIMIT_CPU))
    memo_for, memo, draws = None, {}, False
    start_size = _address_space()
    while True:
        message = control.recv()
        if message is None:
            return
        if "job" not in message:  # a program's end announced after its tests had finished
            continue
        trusted = read_exactly(proto_in, int(message["size"]))
        if trusted is None:
            return
        os.write(ack_w, b"k")
        outgrown = _set_limits(message["limits"], _address_space() - start_size)
        link = Link(to_tests_r, to_program_w, control, message["sequence"])
        reports = []
        if trusted != memo_for:
            memo_for, memo = trusted, {}
            draws = b"random" in trusted  # once per problem: its tests or helpers may draw random inputs
        if draws:
            _fresh_generators()
        run_tests(message["job"], json.loads(trusted), link, reports.append, memo)
        # Back to what the server checks after every job, before the report: once the server has the
        # report it compares them, and limits still lowered would count as a program's tampering.
        signal.setitimer(signal.ITIMER_PROF, 0)
        for which, limits in original.items():
            resource.setrlimit(which, limits)
        Link(None, res_w).send(reports[0])
        del trusted, link, reports
        if outgrown:
            return


def _set_limits(limits, grown):
    """The job's limits for its tests, each the same whatever earlier jobs left this process: CPU timed from here,
    memory on top of what it holds beyond its start (``grown`` bytes: numpy imported to decode a value a program
    returned, a heap grown by a large answer). Whether it has grown by more than a whole memory budget, which only a
    pathological job does: it then runs this job so and ends after the report (a fresh one for the next)."""
    outgrown = False
    for which, soft in limits:
        if which == resource.RLIMIT_CPU:
            # Exactly this much CPU from here (user and system, as RLIMIT_CPU counts), then SIGPROF ends the
            # process. Not RLIMIT_CPU: it counts whole seconds of this process's total, so the tests would get up
            # to a second less depending on what earlier jobs' tests used.
            signal.setitimer(signal.ITIMER_PROF, soft)
            continue
        hard = resource.getrlimit(which)[1]
        if which == resource.RLIMIT_AS and soft != resource.RLIM_INFINITY:
            outgrown = grown > soft
            soft += max(grown, 0)
            soft = soft if hard == resource.RLIM_INFINITY else min(soft, hard)
        resource.setrlimit(which, (soft, hard))
    return outgrown


def _address_space():
    """This process's address space in bytes (``/proc/self/statm``'s first field, in pages)."""
    fd = os.open("/proc/self/statm", os.O_RDONLY)
    try:
        return int(os.read(fd, 64).split()[0]) * resource.getpagesize()
    finally:
        os.close(fd)


def _fresh_generators():
    """Reseed ``random`` and numpy's global generator from the OS before a job whose tests may draw from them
    (HumanEval/38 and /50 draw unseeded inputs, as in the original's fresh process per sample). Kept from job to
    job, they would run on: a sample's inputs would depend on how many numbers earlier samples' tests drew (a
    wrong program chooses that, by failing at the call of its choice), and a program that saw 624 of
    ``random``'s outputs could foretell the next sample's. About 9 us (90 with numpy loaded), only for such
    problems."""
    for name in ("random", "numpy.random"):
        module = sys.modules.get(name)
        if module is not None:
            try:
                module.seed()
            except Exception:  # never worth failing the job for: the tests draw on from the state they had
                pass
