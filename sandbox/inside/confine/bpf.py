"""Seccomp filters: a small assembler for classic BPF with named jump targets, and their installation.

In: a list of instructions ``(opcode, k, label if true, label if false)``, where an instruction may start with
a label of its own (a string), and None for a jump goes on to the next instruction. Out: the program's bytes
(``struct sock_filter`` array), and, on installation, the filter in force on this process and every process
forked from it later (with ``no_new_privs``, which an unprivileged process needs for a filter).
"""

import ctypes
import struct

from sandbox.inside.confine.children import libc

LOAD, JUMP_EQUAL, JUMP_GREATER_EQUAL, JUMP_SET, RETURN = 0x20, 0x15, 0x35, 0x45, 0x06
ALLOW, EPERM, ENOSYS = 0x7FFF0000, 0x00050001, 0x00050026
# struct seccomp_data: the system call's number at 0, the architecture at 4, argument i at 16 + 8 i (the
# low half at that offset on these little-endian machines).
NUMBER, ARCHITECTURE = 0, 4


def argument(index):
    """The offset of the low 32 bits of argument ``index``."""
    return 16 + 8 * index


def assemble(code):
    """The program's bytes; a jump further than BPF's 255 instructions is a ValueError."""
    code = list(code)
    labels = {}
    for index, instruction in enumerate(code):
        if isinstance(instruction[0], str):
            labels[instruction[0]] = index
            code[index] = instruction[1:]
    program = b""
    for index, (opcode, k, when_true, when_false) in enumerate(code):
        jumps = [labels[label] - index - 1 if label else 0 for label in (when_true, when_false)]
        if not all(0 <= jump <= 255 for jump in jumps):
            raise ValueError(f"a jump of instruction {index} out of range: {jumps}")
        program += struct.pack("=HBBI", opcode, jumps[0], jumps[1], k & 0xFFFFFFFF)
    return program


class _Program(ctypes.Structure):  # struct sock_fprog
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]


def install(program):
    """Install ``program`` (bytes) on this process; an OSError if the kernel refuses it."""
    buffer = ctypes.create_string_buffer(program, len(program))
    prctl = libc().prctl
    fprog = _Program(len(program) // 8, ctypes.addressof(buffer))
    zero = ctypes.c_ulong(0)
    # PR_SET_NO_NEW_PRIVS, then PR_SET_SECCOMP with SECCOMP_MODE_FILTER.
    if (prctl(38, ctypes.c_ulong(1), zero, zero, zero) != 0
            or prctl(22, ctypes.c_ulong(2), ctypes.byref(fprog), zero, zero) != 0):
        raise OSError(ctypes.get_errno(), "cannot install a seccomp filter")
