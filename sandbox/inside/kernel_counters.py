"""Between jobs: numbers the kernel hands out in sequence in the server's own namespaces.

A program can read the next such number (make a file and look at its inode number, make a SysV IPC object and
look at its id) and move it (make more), and the number outlives its job: a learner keeps its count there, with
nothing left for the clean-up to find. In: the server's own ``/tmp`` (a tmpfs of its own) and IPC namespace.
Out: whether anything moved them since the last look, which the server takes as the end of its namespaces: it
exits, and the pool starts a fresh one whose numbers start where every fresh server's do. A look makes one
file (unnamed, ``O_TMPFILE``) and one object of each IPC kind, each removed at once, and predicts the next look's
numbers: tmpfs gives a mount's inodes the next number each; the kernel gives IPC objects of each kind the next
index of a cycle of 64 while few exist (``ipc_min_cycle``), the sequence number rising at each wrap. Where a
kernel hands out ids otherwise (checked three times over as the server starts), the IPC ids are not looked at.
The IPC namespace's ``/dev/mqueue`` is looked at too: a queue made and removed by the job itself leaves nothing to
clean, but the folder keeps the time (to the second, which the program chose by waiting). (The network namespace's
counters are kept still otherwise: programs get no IPv4 or IPv6 socket, ``syscall_filter``.)
Programs that make files or IPC objects are rare; each then costs a fresh server.
"""

import os

from sandbox.inside.confine.children import libc
from sandbox.inside.ipc import IPC_RMID, MQUEUE

_IPC_PRIVATE = 0
_INDEX_BITS, _MIN_CYCLE = 15, 64  # the kernel's IPCMNI_SHIFT (ids without ipcmni_extend) and ipc_min_cycle


class KernelCounters:
    def __init__(self, work_root):
        self.work_root = work_root
        first = self._read()
        second, third = self._read(), self._read()
        self.ipc_predictable = (second[1:] == _next_ids(first[1:]) and third[1:] == _next_ids(second[1:]))
        self.last = third
        self.queues = _queues_changed_at()

    def moved(self, made):
        """Whether anything but the server (which ``made`` that many files and folders in /tmp: its job directory)
        made a file in /tmp or an IPC object since the last look (which this call is)."""
        now, queues = self._read(), _queues_changed_at()
        moved = (now[0] != self.last[0] + 1 + made or (self.ipc_predictable and now[1:] != _next_ids(self.last[1:]))
                 or queues != self.queues)
        self.last, self.queues = now, queues
        return moved

    def _read(self):
        fd = os.open(self.work_root, os.O_TMPFILE | os.O_RDWR, 0o600)
        try:
            inode = os.fstat(fd).st_ino
        finally:
            os.close(fd)
        c = libc()
        shm = c.shmget(_IPC_PRIVATE, 1, 0o600)
        c.shmctl(shm, IPC_RMID, None)
        sem = c.semget(_IPC_PRIVATE, 1, 0o600)
        c.semctl(sem, 0, IPC_RMID)
        msg = c.msgget(_IPC_PRIVATE, 0o600)
        c.msgctl(msg, IPC_RMID, None)
        return inode, shm, sem, msg


def _queues_changed_at():
    """When the POSIX message queues' folder last changed."""
    try:
        info = os.stat(MQUEUE)
    except OSError:
        return None
    return info.st_mtime_ns, info.st_ctime_ns


def _next_ids(ids):
    return tuple(_next_id(ident) for ident in ids)


def _next_id(ident):
    if ident < 0:  # the kernel refused the object: so it will again
        return ident
    index, sequence = ident & ((1 << _INDEX_BITS) - 1), ident >> _INDEX_BITS
    following = index + 1 if index + 1 < _MIN_CYCLE else 0
    return ((sequence + (following <= index)) << _INDEX_BITS) | following
