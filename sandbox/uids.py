"""Sandbox uids, each claimed by one worker of one command at a time on this machine.

In: the runtime folder of this machine's lock files (one per uid). Out: a claim, the lowest free slot (uid
``SANDBOX_UID_BASE + slot``) and the descriptor that holds its ``flock``. Why: a uid's processes share one
``RLIMIT_NPROC`` budget, so two commands whose workers ran as the same uid could starve each other (one
command's fork bomb failing the other's programs). A lock dies with the last process holding it (the harness,
and the server it is handed to), so a killed command frees its uids at once and nothing is left to clean.
"""

from __future__ import annotations

import fcntl
import os
import threading

from sandbox.isolation import SANDBOX_UID_BASE, SandboxUnavailable

SLOTS = 1000  # uids SANDBOX_UID_BASE .. SANDBOX_UID_BASE + 999


def runtime_folder() -> str:
    """Root's runtime folder (a tmpfs: the locks go with a reboot), made private to root; /tmp where /run
    cannot be written (a container)."""
    for base in ("/run", "/tmp"):
        folder = os.path.join(base, "harness-sandbox-uids")
        try:
            os.makedirs(folder, mode=0o700, exist_ok=True)
            if os.access(folder, os.W_OK):
                return folder
        except OSError:
            continue
    raise SandboxUnavailable("cannot claim a sandbox uid: neither /run nor /tmp can hold its lock files")


def claim_slot() -> tuple[int, int]:
    """The lowest slot no live process holds, and the descriptor whose lock holds it (close it to free it)."""
    folder = runtime_folder()
    for slot in range(SLOTS):
        fd = os.open(os.path.join(folder, f"{SANDBOX_UID_BASE + slot}.lock"), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC,
                     0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            continue
        return slot, fd
    raise SandboxUnavailable(f"every sandbox uid ({SANDBOX_UID_BASE}..{SANDBOX_UID_BASE + SLOTS - 1}) is taken by "
                             f"a worker of a running command: use fewer --workers or wait for a command to end")


class UidClaims:
    """The uid slots of one pool's workers: each claimed when the worker first starts a server, kept across
    its restarts, and freed by ``release`` once every server has ended."""

    def __init__(self) -> None:
        self._claims: dict[int, tuple[int, int]] = {}
        self._lock = threading.Lock()

    def slot(self, worker: int) -> tuple[int, tuple[int, ...]]:
        """The slot ``server_command`` adds to ``SANDBOX_UID_BASE`` for this worker, and the descriptors to hand
        to its server (the lock). Only a root harness switches uid: otherwise the worker's index, no lock."""
        if os.geteuid() != 0:
            return worker, ()
        with self._lock:
            claim = self._claims.get(worker)
            if claim is None:
                claim = self._claims[worker] = claim_slot()
        return claim[0], (claim[1],)

    def release(self) -> None:
        with self._lock:
            claims, self._claims = list(self._claims.values()), {}
        for _, fd in claims:
            os.close(fd)
