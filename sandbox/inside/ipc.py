"""Between jobs: no IPC object a job made outlives it.

In: the server's own IPC namespace (bubblewrap's ``--unshare-ipc``, with the namespace's POSIX message queues
mounted on ``/dev/mqueue``), once every process of the job has been killed and reaped. Out: the namespace empty
again (SysV shared memory segments, semaphore sets and message queues, POSIX message queues all removed,
which also frees the memory they pinned), or ``IpcLeft`` when something could not be removed (the server then
exits, and the pool starts a fresh one in a fresh namespace). The common case, nothing made, costs three
``*_INFO`` calls and one listing of an empty folder.
"""

import ctypes
import os

from sandbox.inside.confine.children import libc

MQUEUE = "/dev/mqueue"
IPC_RMID = 0
# (the ``*ctl`` call, its INFO command, the int of the INFO struct that counts existing objects, /proc file)
_KINDS = (("shmctl", 14, 0, "shm"),  # SHM_INFO: shm_info.used_ids
          ("semctl", 19, 7, "sem"),  # SEM_INFO: seminfo.semusz, the number of semaphore sets
          ("msgctl", 12, 0, "msg"))  # MSG_INFO: msginfo.msgpool, the number of queues
_INFO = []


class IpcLeft(Exception):
    """An IPC object of a finished job could not be removed."""


def _counts():
    """How many objects of each kind exist (one ``*_INFO`` call each; an error counts as one, so that /proc
    is looked at)."""
    if not _INFO:
        info = (ctypes.c_int * 64)()  # larger than any of the INFO structs
        _INFO.extend((getattr(libc(), call), (0, 0, command, info) if call == "semctl" else (0, command, info),
                      info, field) for call, command, field, _ in _KINDS)
    return [info[field] if call(*arguments) >= 0 else 1 for call, arguments, info, field in _INFO]


def clear_ipc():
    """Remove every IPC object of this namespace; ``IpcLeft`` if any is still there afterwards."""
    queues = os.listdir(MQUEUE)
    counts = _counts()
    if not any(counts) and not queues:
        return
    for (call, _, _, name), count in zip(_KINDS, counts):
        if count:
            with open("/proc/sysvipc/" + name) as table:
                ids = [int(line.split()[1]) for line in table.read().splitlines()[1:]]
            for ident in ids:  # the job's processes are gone: removing frees a segment at once
                if call == "semctl":
                    libc().semctl(ident, 0, IPC_RMID)
                else:
                    getattr(libc(), call)(ident, IPC_RMID, None)
    for queue in queues:
        try:
            os.unlink(os.path.join(MQUEUE, queue))
        except OSError:
            pass
    if any(_counts()) or os.listdir(MQUEUE):
        raise IpcLeft("IPC objects of the last job could not be removed")
