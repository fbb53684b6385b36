"""How the zygote keeps each fork cheap, with nothing of any job (``sandbox.inside.zygote``).

A program's process is forked from the zygote and dies after one job, so whatever it must set up, specialise or
copy after the fork it pays for on every job. Before its first fork the zygote answers a fixed job's calls itself
(``warm_up``: CPython specialises the code every child runs) and fills the allocator's scattered free blocks
(``plug_allocator_holes``: a child's allocations then land in a few whole pages); for each job it forks the
program's process as the server's own child where the kernel lets it (``ForkBeside``), so that the server waits
for it without waking the zygote again. Each is the same for every worker and every job: a child inherits the same
state whatever ran before it.
"""

import _thread
import gc
import os
import signal
import sys

from sandbox.inside.job.candidate import run_candidate
from sandbox.inside.wire.channel import Link
from sandbox.inside.wire.codec import encode_value


# A fixed job the zygote answers itself before its first fork (``warm_up``): the same for every worker and
# every run, so it carries nothing of any real job; ``g`` is undefined, for the path of a call that raises.
# Its requests (about 1.4 KB) and answers (about 2.3 KB) wait in pipes that nobody reads yet: they must stay
# under a pipe's smallest capacity (one 4 KiB page, where the uid is over ``pipe-user-pages-soft``).
_WARM_UP_PROGRAM = "def f(x):\n    return x\n"
_WARM_UP_VALUES = (1, 2.5, "a", [1, 2], (1, "b"), {"k": [1.0]}, None, True, {1, 2})


def warm_up():
    """Import ``ast`` (printed-value jobs compile through it) and answer a fixed job's calls, three times
    over, before the first fork, so that every child inherits the same state whatever ran before it on this
    worker (were ``ast`` imported on the first printed-value job instead, a program could tell whether one had
    run). The calls make CPython 3.11 specialise the channel's and the program side's functions here, in
    place, once they have run 8 times: each child runs them dozens of times a job, and starting from cold code
    it specialised them again and copied every page of code objects it wrote (copy-on-write), on every job.
    Measured: 0.35 ms of CPU a program (benchmarks/perf/RESULTS.md, session 10). A warm-up that fails costs
    that time, never a job."""
    import ast  # noqa: F401
    calls = [{"call": name, "args": [encode_value(value)], "kwargs": {}}
             for name in ("f", "g") for value in _WARM_UP_VALUES]
    for _ in range(3):
        requests_r, requests_w = os.pipe()
        answers_r, answers_w = os.pipe()
        try:
            tests = Link(answers_r, requests_w)
            for call in calls:
                tests.send(call)
            tests.send({"batch": calls[:len(_WARM_UP_VALUES)]})
            os.close(requests_w)
            requests_w = None
            run_candidate({"program": _WARM_UP_PROGRAM}, Link(requests_r, answers_w))
        except Exception:
            pass
        finally:
            for fd in (requests_r, requests_w, answers_r, answers_w):
                if fd is not None:
                    os.close(fd)
    gc.collect()  # the program's namespace and function refer to each other: not kept for good by gc.freeze


# Objects the zygote keeps for good, only to fill free blocks (``plug_allocator_holes``): zeros, nothing of a job.
_PLUGS = []


def plug_allocator_holes():
    """Fill the free blocks that imports and the warm-up left scattered through the small-object allocator's
    pools (CPython's pymalloc: one pool per size class at a time, 16 KiB each) with objects kept for good,
    about 0.4 MB. A child's allocations then come from whole free pools, a few contiguous pages, instead of one
    block here and one there across dozens of pages that it must each copy on its first write (copy-on-write):
    with numpy preloaded, 405 -> 360 page faults and 0.1 ms of CPU a program (benchmarks/perf/RESULTS.md).
    How many blocks each size class has free comes from CPython's own count (``sys._debugmallocstats``, which
    writes on the C ``stderr``); where it is missing or says something else, nothing is plugged. Each plug is an
    object of exactly its class's size: a 16-byte ``object()``, a float (24 bytes: the 32 class), bytes of
    ``size - 33`` (a bytes object is 33 bytes and its length)."""
    try:
        report = _allocator_report()
    except Exception:  # costs the saving, never the zygote
        return
    for line in report.splitlines():
        fields = line.split()  # class, size, pools, blocks in use, free blocks
        if len(fields) != 5 or not all(field.isdigit() for field in fields):
            continue
        size, free = int(fields[1]), int(fields[4])
        if size == 16:
            _PLUGS.extend(object() for _ in range(free))
        elif size == 32:
            _PLUGS.extend(float(number) + 0.5 for number in range(free))
        elif size > 33:
            _PLUGS.extend(bytes(size - 33) for _ in range(free))


def _allocator_report():
    """What ``sys._debugmallocstats`` writes on file descriptor 2, caught in a memory file (about 5 KB: a pipe
    could hold less where a uid is over ``pipe-user-pages-soft``, and the zygote would block writing to itself)."""
    caught = os.memfd_create("allocator-report")
    try:
        saved = os.dup(2)
        try:
            os.dup2(caught, 2)
            sys._debugmallocstats()
        finally:
            os.dup2(saved, 2)
            os.close(saved)
        return os.pread(caught, 1 << 20, 0).decode("ascii", "replace")
    finally:
        os.close(caught)


class ForkBeside:
    """``os.fork`` with ``CLONE_PARENT``: the child's parent is the zygote's, the server, which then waits for it
    itself (through its pidfd, as it waits for its tests' process) instead of waiting for the zygote to wake,
    reap it and report: one wake-up less a job, 4 % of whole-process throughput (benchmarks/perf/RESULTS.md).
    Python has no call for it: the ``clone`` system call through ctypes, between ``PyOS_BeforeFork`` and
    ``PyOS_AfterFork_Child`` or ``_Parent`` as ``os.fork`` calls them (at-fork hooks, the import lock). It
    skips the C library's own fork handlers, which a single-threaded process does not need (its locks are
    free; threads of BLAS libraries are held to 1 in the sandbox's environment). What its ``fork`` has the kernel
    do it asks for too: write the child's thread id into the C library's descriptor of the thread
    (``CLONE_CHILD_SETTID``), where ``pthread_kill`` and ``pthread_getcpuclockid`` read the main thread's (else
    the zygote's: a program's thread could not signal its main thread). Only on machines whose ``clone`` takes
    its flags first and whose number is known here, with glibc (which says where that id is); elsewhere, or if
    the kernel refuses it, ``os.fork``, and the zygote reaps and reports."""

    NUMBERS = {"x86_64": 56, "aarch64": 220, "riscv64": 220}
    # Which of clone's arguments (flags first) is where the kernel writes the child's thread id: x86_64 takes it
    # before the thread pointer, the others after.
    CHILD_TID_AT = {"x86_64": 3, "aarch64": 4, "riscv64": 4}
    CLONE_PARENT, CLONE_CHILD_SETTID = 0x00008000, 0x01000000

    def __init__(self):
        import ctypes

        machine = os.uname().machine
        self.number = self.NUMBERS.get(machine)
        if self.number is None:
            return
        try:
            api = ctypes.pythonapi  # calls that hold the GIL, as os.fork does around fork()
            self.before, self.parent = api.PyOS_BeforeFork, api.PyOS_AfterFork_Parent
            self.child = api.PyOS_AfterFork_Child
            self.syscall = ctypes.PyDLL(None).syscall
            # glibc's place of the thread id in its thread descriptor, exported for debuggers: bits, count, offset
            tid_field = (ctypes.c_uint32 * 3).in_dll(ctypes.CDLL(None), "_thread_db_pthread_tid")
        except (AttributeError, OSError, ValueError):  # an interpreter or C library that does not export them
            self.number = None
            return
        if tuple(tid_field[:2]) != (32, 1):
            self.number = None
            return
        self.syscall.restype = ctypes.c_long
        self.syscall.argtypes = [ctypes.c_long] * 6
        self.arguments = [self.CLONE_PARENT | self.CLONE_CHILD_SETTID | signal.SIGCHLD, 0, 0, 0, 0]
        # this thread's descriptor, which the child's main thread keeps
        self.arguments[self.CHILD_TID_AT[machine]] = _thread.get_ident() + tid_field[2]

    def __call__(self):
        """The child's pid (0 in the child), or None where it cannot: then fork as usual."""
        if self.number is None:
            return None
        self.before()
        pid = self.syscall(self.number, *self.arguments)
        if pid == 0:
            self.child()
            return 0
        self.parent()
        if pid < 0:
            self.number = None  # refused (a kernel or filter without it): os.fork from now on
            return None
        return pid
