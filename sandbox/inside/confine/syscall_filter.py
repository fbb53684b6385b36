"""The seccomp filter that keeps programs from creating user namespaces and network sockets, built in the harness
and installed by the execution server before it forks anything.

In (harness): the machine's architecture. Out: the filter as hex text for the server's settings, or None
where the architecture is not one this module knows. In (server): that text. Out: the filter installed on
the server (with ``no_new_privs``), inherited by every process forked from it. No program needs a user
namespace, and one gives it a root of its own over fresh mounts and network namespaces: ``unshare`` and
``clone`` with ``CLONE_NEWUSER`` fail with EPERM; ``clone3``, whose flags a filter cannot read, fails with
ENOSYS (the C library then falls back to ``clone``); and system calls of another ABI (x32, or i386 through
``int 0x80``), where these have other numbers, fail with ENOSYS. Nor does a program need an IPv4 or IPv6 socket:
there is no network in the sandbox, and traffic over its loopback device (or a send with no route) moves the
server's network namespace's counters, which outlive the job (``/proc/net/snmp``; TCP ports left in TIME_WAIT),
so a later program could read a count an earlier one chose. ``socket`` with ``AF_INET`` or ``AF_INET6`` fails with
EPERM (Unix sockets, which ``asyncio`` uses, are left alone), and ``io_uring_setup``, whose rings could make
sockets out of a filter's sight, with ENOSYS.
"""

from sandbox.inside.confine.bpf import (ALLOW, ARCHITECTURE, ENOSYS, EPERM, JUMP_EQUAL, JUMP_GREATER_EQUAL, JUMP_SET,
                                        LOAD, NUMBER, RETURN, argument, assemble)
from sandbox.inside.confine.bpf import install as _install

# Per architecture: (AUDIT_ARCH value, unshare, clone, clone3, socket, io_uring_setup, lowest number of another
# ABI or None).
_ARCHITECTURES = {
    "x86_64": (0xC000003E, 272, 56, 435, 41, 425, 0x40000000),
    "aarch64": (0xC00000B7, 97, 220, 435, 198, 425, None),
}
_CLONE_NEWUSER = 0x10000000
_AF_INET, _AF_INET6 = 2, 10


def filter_program(machine):
    """The filter for ``machine`` (``platform.machine()``) as hex text, or None."""
    known = _ARCHITECTURES.get(machine)
    if known is None:
        return None
    arch, unshare, clone, clone3, socket, io_uring_setup, other_abi = known
    code = [(LOAD, ARCHITECTURE, None, None), (JUMP_EQUAL, arch, None, "enosys"), (LOAD, NUMBER, None, None)]
    if other_abi is not None:
        code.append((JUMP_GREATER_EQUAL, other_abi, "enosys", None))
    code += [(JUMP_EQUAL, clone3, "enosys", None), (JUMP_EQUAL, io_uring_setup, "enosys", None),
             (JUMP_EQUAL, unshare, "flags", None), (JUMP_EQUAL, clone, "flags", None),
             (JUMP_EQUAL, socket, "domain", None), (RETURN, ALLOW, None, None),
             ("flags", LOAD, argument(0), None, None), (JUMP_SET, _CLONE_NEWUSER, "eperm", None),
             (RETURN, ALLOW, None, None),
             ("domain", LOAD, argument(0), None, None), (JUMP_EQUAL, _AF_INET, "eperm", None),
             (JUMP_EQUAL, _AF_INET6, "eperm", None), (RETURN, ALLOW, None, None),
             ("eperm", RETURN, EPERM, None, None), ("enosys", RETURN, ENOSYS, None, None)]
    return assemble(code).hex()


def install(program_hex):
    """Install the filter on this process (the server, before it forks anything); an OSError if it cannot."""
    _install(bytes.fromhex(program_hex))
