"""The seccomp filter that keeps programs from creating user namespaces, built in the harness and installed
by the execution server before it forks anything.

In (harness): the machine's architecture. Out: the filter as hex text for the server's settings, or None
where the architecture is not one this module knows. In (server): that text. Out: the filter installed on
the server (with ``no_new_privs``), inherited by every process forked from it. No program needs a user
namespace, and one gives it a root of its own over fresh mounts and network namespaces: ``unshare`` and
``clone`` with ``CLONE_NEWUSER`` fail with EPERM; ``clone3``, whose flags a filter cannot read, fails with
ENOSYS (the C library then falls back to ``clone``); and system calls of another ABI (x32, or i386 through
``int 0x80``), where these have other numbers, fail with ENOSYS.
"""

import struct

# Per architecture: (AUDIT_ARCH value, unshare, clone, clone3, lowest number of another ABI or None).
_ARCHITECTURES = {
    "x86_64": (0xC000003E, 272, 56, 435, 0x40000000),
    "aarch64": (0xC00000B7, 97, 220, 435, None),
}
_CLONE_NEWUSER = 0x10000000
_ALLOW, _EPERM, _ENOSYS = 0x7FFF0000, 0x00050001, 0x00050026
_LOAD, _JEQ, _JGE, _JSET, _RET = 0x20, 0x15, 0x35, 0x45, 0x06
# struct seccomp_data: the system call's number at 0, the architecture at 4, its first argument at 16
# (the low half on these little-endian machines).
_NR, _ARCH, _ARG0 = 0, 4, 16


def filter_program(machine):
    """The filter for ``machine`` (``platform.machine()``) as hex text, or None."""
    known = _ARCHITECTURES.get(machine)
    if known is None:
        return None
    arch, unshare, clone, clone3, other_abi = known
    # (opcode, k, label jumped to when true, label when false): None goes on to the next instruction.
    code = [(_LOAD, _ARCH, None, None), (_JEQ, arch, None, "enosys"), (_LOAD, _NR, None, None)]
    if other_abi is not None:
        code.append((_JGE, other_abi, "enosys", None))
    code += [(_JEQ, clone3, "enosys", None), (_JEQ, unshare, "flags", None), (_JEQ, clone, "flags", None),
             (_RET, _ALLOW, None, None),
             ("flags", _LOAD, _ARG0, None, None), (_JSET, _CLONE_NEWUSER, "eperm", None), (_RET, _ALLOW, None, None),
             ("eperm", _RET, _EPERM, None, None), ("enosys", _RET, _ENOSYS, None, None)]
    labels = {}
    for index, instruction in enumerate(code):
        if isinstance(instruction[0], str):
            labels[instruction[0]] = index
            code[index] = instruction[1:]
    program = b""
    for index, (opcode, k, when_true, when_false) in enumerate(code):
        jumps = [labels[label] - index - 1 if label else 0 for label in (when_true, when_false)]
        program += struct.pack("=HBBI", opcode, jumps[0], jumps[1], k)
    return program.hex()


def install(program_hex):
    """Install the filter on this process (the server, before it forks anything); an OSError if it cannot."""
    import ctypes

    program = bytes.fromhex(program_hex)
    buffer = ctypes.create_string_buffer(program, len(program))

    class Program(ctypes.Structure):  # struct sock_fprog
        _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]

    prctl = ctypes.CDLL(None, use_errno=True).prctl
    fprog = Program(len(program) // 8, ctypes.addressof(buffer))
    zero = ctypes.c_ulong(0)
    # PR_SET_NO_NEW_PRIVS, then PR_SET_SECCOMP with SECCOMP_MODE_FILTER.
    if (prctl(38, ctypes.c_ulong(1), zero, zero, zero) != 0
            or prctl(22, ctypes.c_ulong(2), ctypes.byref(fprog), zero, zero) != 0):
        raise OSError(ctypes.get_errno(), "cannot install the seccomp filter")
