"""The seccomp filter that keeps a job's processes off the worker's own processes.

In (zygote, once, before its first child): the pid of the worker's tests' process. Out: a filter on the zygote,
which every program's process inherits at its fork, naming the processes a program must not reach (the server,
the zygote, the tests' process, and the harness where the server is its child), so that a program and
everything it forks get EPERM, as from a process of another uid, for: a signal to one of those
pids or groups or to every process (``kill(-1)``), by ``kill``, ``tkill``, ``tgkill`` or ``rt_(tg)sigqueueinfo``;
any ``pidfd_send_signal`` (a pidfd also comes from ``open("/proc/<pid>")``, which a filter cannot see);
changing their limits, priority, scheduling or CPU affinity; and naming one as a file's owner for ``SIGIO``
(``F_SETOWN``; ``F_SETOWN_EX`` and the ``ioctl`` forms, whose argument a filter cannot read, always). Why: a
program of the same uid could otherwise kill or slow them by pid, and whether it reaches them depends on which
pids they were given, which depends on what the worker ran before: the verdict would too. Once per zygote, not
per job: the kernel compiles a filter as it installs it, which cost 0.25 ms per job. A tests' process that
ends therefore ends its server too (``sandbox.inside.server``).
"""

import os

from sandbox.inside.confine.bpf import (ALLOW, ARCHITECTURE, EPERM, JUMP_EQUAL, LOAD, NUMBER, RETURN, argument,
                                        assemble, install)

# Per architecture: its AUDIT_ARCH value and system call numbers.
_ARCHITECTURES = {
    "x86_64": (0xC000003E, dict(kill=62, tkill=200, tgkill=234, rt_sigqueueinfo=129, rt_tgsigqueueinfo=297,
                                pidfd_send_signal=424, prlimit64=302, sched_setaffinity=203, sched_setscheduler=144,
                                sched_setparam=142, sched_setattr=314, setpriority=141, ioprio_set=251, fcntl=72,
                                ioctl=16)),
    "aarch64": (0xC00000B7, dict(kill=129, tkill=130, tgkill=131, rt_sigqueueinfo=138, rt_tgsigqueueinfo=240,
                                 pidfd_send_signal=424, prlimit64=261, sched_setaffinity=122, sched_setscheduler=119,
                                 sched_setparam=118, sched_setattr=274, setpriority=140, ioprio_set=30, fcntl=25,
                                 ioctl=29)),
}
# Calls whose first argument is the pid (or, for the signals, -group or -1) they act on.
_FIRST_ARGUMENT = ("kill", "tkill", "tgkill", "rt_sigqueueinfo", "rt_tgsigqueueinfo", "prlimit64",
                   "sched_setaffinity", "sched_setscheduler", "sched_setparam", "sched_setattr")
_PRIO_PROCESS, _IOPRIO_WHO_PROCESS = 0, 1
_F_SETOWN, _F_SETOWN_EX, _FIOSETOWN, _SIOCSPGRP = 8, 15, 0x8901, 0x8902


def guards(machine):
    """Whether this module has a filter for ``machine``: where it has none, ``guard_worker`` installs nothing."""
    return machine in _ARCHITECTURES


def guard_program(machine, pids, groups):
    """The filter for ``machine`` (``os.uname().machine``) protecting ``pids`` and process ``groups``, or None
    where the architecture is not one this module knows."""
    known = _ARCHITECTURES.get(machine)
    if known is None:
        return None
    arch, numbers = known
    goto = lambda label: (JUMP_EQUAL, 0, label, label)  # noqa: E731 - compares the loaded word: jumps either way
    code = [(LOAD, ARCHITECTURE, None, None), (JUMP_EQUAL, arch, None, "allow"),
            (LOAD, NUMBER, None, None)]
    code += [(JUMP_EQUAL, numbers[name], "first", None) for name in _FIRST_ARGUMENT]
    code += [(JUMP_EQUAL, numbers["pidfd_send_signal"], "eperm", None),
             (JUMP_EQUAL, numbers["setpriority"], "priority", None),
             (JUMP_EQUAL, numbers["ioprio_set"], "io_priority", None),
             (JUMP_EQUAL, numbers["fcntl"], "fcntl", None),
             (JUMP_EQUAL, numbers["ioctl"], "ioctl", None),
             (RETURN, ALLOW, None, None),
             ("priority", LOAD, argument(0), None, None), (JUMP_EQUAL, _PRIO_PROCESS, "second", "eperm"),
             ("io_priority", LOAD, argument(0), None, None), (JUMP_EQUAL, _IOPRIO_WHO_PROCESS, "second", "eperm"),
             ("second", LOAD, argument(1), None, None), goto("targets"),
             ("fcntl", LOAD, argument(1), None, None), (JUMP_EQUAL, _F_SETOWN_EX, "eperm", None),
             (JUMP_EQUAL, _F_SETOWN, None, "allow"), (LOAD, argument(2), None, None), goto("targets"),
             ("ioctl", LOAD, argument(1), None, None), (JUMP_EQUAL, _FIOSETOWN, "eperm", None),
             (JUMP_EQUAL, _SIOCSPGRP, "eperm", "allow"),
             ("first", LOAD, argument(0), None, None)]
    targets = sorted({pid for pid in pids if pid > 0} | {-group for group in groups if group > 0} | {-1})
    code.append(("targets",) + (JUMP_EQUAL, targets[0], "eperm", None))
    code += [(JUMP_EQUAL, target, "eperm", None) for target in targets[1:]]
    code += [("allow", RETURN, ALLOW, None, None), ("eperm", RETURN, EPERM, None, None)]
    return assemble(code)


def guard_worker(tests_pid, harness_pid):
    """Install the filter on this process (the zygote, before its first child), protecting it, its parent (the
    server), ``harness_pid`` (the server's parent, where no PID namespace hides it; else 0), ``tests_pid`` and
    their process groups. An OSError if the kernel refuses it; nothing on an architecture this module does
    not know."""
    program = guard_program(os.uname().machine, [os.getpid(), os.getppid(), harness_pid, tests_pid],
                            [os.getpgid(0), _group_of(harness_pid), tests_pid])
    if program is not None:
        install(program)


def _group_of(pid):
    try:
        return os.getpgid(pid) if pid > 1 else 0
    except OSError:
        return 0
