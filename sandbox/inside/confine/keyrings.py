"""The kernel's keyrings, shut for the server and every process forked from it.

In: nothing (called once, as the server starts, before any job). Out: a seccomp filter on this process, which
every fork inherits and none can remove, under which ``add_key``, ``request_key`` and ``keyctl`` fail with
EPERM; True if it is in force. Why: a uid's user keyring outlives every process of that uid (the kernel keeps it
for the life of the machine), and the session keyring is the harness's own, so a key a program adds would reach
every later job and every later command. No program needs keys; a filter costs nothing per job, where
clearing the keyrings after each job would not even be sound (a program can take away its owner's right to
clear them). Also sets ``no_new_privs``, which an unprivileged process needs to install a filter (and which
keeps a setuid program from gaining privileges inside the sandbox).
"""

import ctypes
import struct

from sandbox.inside.confine.children import libc

# (AUDIT_ARCH_*, the numbers of add_key, request_key, keyctl). The native table and the compat ones the
# same process can also call into (int 0x80 on x86-64, x32's numbers with bit 30 set).
_TABLES = ((0xC000003E, (248, 249, 250, 0x40000000 | 248, 0x40000000 | 249, 0x40000000 | 250)),  # x86-64, x32
           (0x40000003, (286, 287, 288)),  # i386
           (0xC00000B7, (217, 218, 219)),  # aarch64
           (0x40000028, (309, 310, 311)),  # arm
           (0xC00000F3, (217, 218, 219)))  # riscv64
_LOAD_WORD, _JUMP_IF_EQUAL, _RETURN = 0x20, 0x15, 0x06
_ALLOW, _EPERM = 0x7FFF0000, 0x00050000 | 1
_SECCOMP_DATA_NR, _SECCOMP_DATA_ARCH = 0, 4


def _program():
    """The BPF program: for each known architecture, its three numbers fail; anything else is allowed."""
    code = [(_LOAD_WORD, 0, 0, _SECCOMP_DATA_ARCH)]
    for arch, numbers in _TABLES:
        block = [(_LOAD_WORD, 0, 0, _SECCOMP_DATA_NR)]
        for number in numbers:
            block += [(_JUMP_IF_EQUAL, 0, 1, number), (_RETURN, 0, 0, _EPERM)]
        block += [(_RETURN, 0, 0, _ALLOW)]
        code += [(_JUMP_IF_EQUAL, 0, len(block), arch)] + block
    code += [(_RETURN, 0, 0, _ALLOW)]
    return b"".join(struct.pack("HBBI", *instruction) for instruction in code), len(code)


class _Program(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_char_p)]


def shut_keyrings():
    """Install the filter on this process; False if the kernel refused it (no seccomp)."""
    code, length = _program()
    program = _Program(length, code)
    prctl = libc().prctl
    if prctl(38, 1, 0, 0, 0) != 0:  # PR_SET_NO_NEW_PRIVS
        return False
    return prctl(22, 2, ctypes.byref(program), 0, 0) == 0  # PR_SET_SECCOMP, SECCOMP_MODE_FILTER
