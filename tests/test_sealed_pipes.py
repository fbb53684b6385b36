"""Sealed jobs (issue 30): what a program can set on the channel's pipes themselves reaches no later program.

Every program of one tests' process shares the channel's two pipes. Their open file descriptions were checked
(flags, size); their inode is one too, and it is the sandbox uid's: a program may set its times (``futimens``,
any 64-bit values), its mode (``fchmod``) and its write-life hint (``F_SET_RW_HINT``), and the open file
description's signal (``F_SETSIG``, any of 65), and a later program reads them all back (``fstat``,
``F_GET_RW_HINT``, ``F_GETSIG``). A lock it takes on them (``flock``, an open file
description's lock ``F_OFD_SETLK`` over a range of its choice) belongs to the shared open file description and
outlives the program: a later one sees it in ``/proc/locks`` or when it locks the pipe opened anew.
"""

from __future__ import annotations

import pytest

from sandbox.pool import Job, Limits
from test_sandbox_hostile import require_full_isolation
from test_sealed_jobs import alone_between_after

LIMITS = Limits(wall_seconds=4, cpu_seconds=3, memory_mb=1024, processes=32, output_bytes=200_000)
TEST = "def check(candidate):\n    assert candidate(2) == 4\n"
GOOD = "def double(x):\n    return 2 * x\n"
IS_PIPE = """
import fcntl, os, stat, struct

def _is_pipe(fd):
    try:
        return stat.S_ISFIFO(os.fstat(fd).st_mode)
    except OSError:
        return False

pipes = [fd for fd in range(3, 64) if _is_pipe(fd)]
"""
MARKS = {"times": "os.utime(fd, ns=(4242, 4343))", "mode": "os.chmod(fd, 0o6707)",
         "hint": "fcntl.fcntl(fd, 1036, struct.pack('Q', 3))",  # F_SET_RW_HINT: RWH_WRITE_LIFE_MEDIUM
         "signal": "fcntl.fcntl(fd, 10, 42)"}  # F_SETSIG, on the open file description


def marks_pipes(mark: str) -> str:
    return IS_PIPE + "for fd in pipes:\n    %s\n" % MARKS[mark] + GOOD


READS_PIPES = IS_PIPE + """
seen = set()
for fd in pipes:
    info = os.fstat(fd)
    seen.add((oct(info.st_mode), (info.st_atime_ns, info.st_mtime_ns) == (4242, 4343),
              struct.unpack("Q", fcntl.fcntl(fd, 1035, bytes(8)))[0], fcntl.fcntl(fd, 11)))  # F_GET_RW_HINT, F_GETSIG
print(len(pipes), sorted(seen))
""" + GOOD


@pytest.mark.parametrize("mark", sorted(MARKS))
def test_marks_on_the_channel_pipes_do_not_reach_the_next_program(mark):
    require_full_isolation()
    marks, reads = (Job(program=program, mode="assert", limits=LIMITS, test=TEST, entry_point="double")
                    for program in (marks_pipes(mark), READS_PIPES))
    alone, marked, after = alone_between_after(reads, marks)
    assert alone.passed and alone.stdout == "2 [('0o10600', False, 0, 0)]\n", alone
    assert marked.passed, marked
    assert (after.passed, after.stdout) == (True, alone.stdout), after


LOCKS_PIPES = IS_PIPE + """
for fd in pipes:
    fcntl.flock(fd, fcntl.LOCK_EX)
    writable = fcntl.fcntl(fd, fcntl.F_GETFL) & os.O_ACCMODE == os.O_WRONLY
    lock = struct.pack("hhqqi4x", fcntl.F_WRLCK if writable else fcntl.F_RDLCK, 0, 4242, 4343, 0)
    fcntl.fcntl(fd, 37, lock)  # F_OFD_SETLK over bytes 4242 to 8584
""" + GOOD
SEES_LOCKS = IS_PIPE + """
blocked = []
for fd in pipes:
    again = os.open("/proc/self/fd/%d" % fd, fcntl.fcntl(fd, fcntl.F_GETFL) & os.O_ACCMODE)  # a description of its own
    try:
        fcntl.flock(again, fcntl.LOCK_EX | fcntl.LOCK_NB)
        blocked.append(False)
    except BlockingIOError:
        blocked.append(True)
print(len(pipes), blocked, open("/proc/locks").read().count("OFDLCK"))
""" + GOOD


def test_locks_on_the_channel_pipes_do_not_reach_the_next_program():
    require_full_isolation()
    locks, sees = (Job(program=program, mode="assert", limits=LIMITS, test=TEST, entry_point="double")
                   for program in (LOCKS_PIPES, SEES_LOCKS))
    alone, locked, after = alone_between_after(sees, locks)
    assert alone.passed and alone.stdout == "2 [False, False] 0\n", alone
    assert locked.passed, locked
    assert (after.passed, after.stdout) == (True, alone.stdout), after
