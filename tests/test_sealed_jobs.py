"""Sealed jobs: nothing one job leaves in the kernel or the worker reaches a later job (issue 30).

Each case runs hostile programs through the real sandbox and then checks, from a later program on the same
worker (or a later or concurrent pool, standing for another command), that the state they left is gone and
that the later verdicts are the ones those programs get alone.
"""

from __future__ import annotations

import os
import platform
import uuid

import pytest

from sandbox.pool import Job, Limits, SandboxPool
from test_sandbox_hostile import require_full_isolation

LIMITS = Limits(wall_seconds=4, cpu_seconds=3, memory_mb=1024, processes=32, output_bytes=200_000)
CHECK = "def check(candidate):\n    assert candidate(0) == 3\n"
GOOD = "def double(x):\n    return 2 * x\n"
# add_key, keyctl for this machine's system call table (the learner reaches the keyrings through them).
KEY_SYSCALLS = {"x86_64": (248, 250), "aarch64": (217, 219)}.get(platform.machine(), (248, 250))
LEARNER_TAG = uuid.uuid4().hex[:12]  # a fresh name per test run: keys of an earlier run must not count

# A "learner" with no algorithm: it keeps a counter in every kind of state that could outlive its job
# (SysV shared memory, a semaphore, a message queue, a POSIX message queue, the user's and the session's
# keyrings), answers the counter's next value, and so passes the check (answer 3) on its third sample if
# any of them carries over. It prints what it found, which must be the same for every sample.
LEARNER = """
import ctypes, ctypes.util, os
libc = ctypes.CDLL(None, use_errno=True)
libc.shmat.restype = ctypes.c_void_p
ADD_KEY, KEYCTL = %(syscalls)r
KEY = 0x5EA1ED
NAME = b"learner-%(tag)s"
found = {}

shm = libc.shmget(KEY, 4096, 0o1666)
cell = ctypes.c_int.from_address(libc.shmat(shm, None, 0)) if shm >= 0 else None
found["shm"] = cell.value if cell is not None else -1
sem = libc.semget(KEY, 1, 0o1666)
found["sem"] = libc.semctl(sem, 0, 12) if sem >= 0 else -1  # GETVAL
msg = libc.msgget(KEY, 0o1666)
found["msg"] = -1
for line in open("/proc/sysvipc/msg").read().splitlines()[1:]:
    if int(line.split()[1]) == msg:
        found["msg"] = int(line.split()[4])  # messages in the queue
try:
    rt = ctypes.CDLL(ctypes.util.find_library("rt") or None, use_errno=True)
    mq = rt.mq_open(b"/" + NAME, os.O_RDWR | os.O_CREAT | os.O_NONBLOCK, 0o666, None)
    attr = (ctypes.c_long * 8)()
    found["mq"] = attr[3] if mq >= 0 and rt.mq_getattr(mq, attr) == 0 else -1
except AttributeError:
    mq, found["mq"] = -1, -1

def key_value(ring):
    key = libc.syscall(KEYCTL, 10, ring, b"user", NAME, 0)  # KEYCTL_SEARCH
    if key < 0:
        return -1
    data = ctypes.create_string_buffer(32)
    size = libc.syscall(KEYCTL, 11, key, data, 32)  # KEYCTL_READ
    return int(data.raw[:size]) if size > 0 else -1

found["user_keyring"] = key_value(-4)
found["session_keyring"] = key_value(-3)
print(sorted(found.items()))

n = max(list(found.values()) + [0]) + 1
if cell is not None:
    cell.value = n
if sem >= 0:
    libc.semctl(sem, 0, 16, n)  # SETVAL
if msg >= 0:
    libc.msgsnd(msg, ctypes.create_string_buffer(b"\\1\\0\\0\\0\\0\\0\\0\\0x"), 1, 0)
if mq >= 0:
    rt.mq_send(mq, b"x", 1, 0)
for ring in (-4, -3):
    value = str(n).encode()
    libc.syscall(ADD_KEY, b"user", NAME, value, len(value), ring)

def double(x):
    return n
""" % {"syscalls": KEY_SYSCALLS, "tag": LEARNER_TAG}


def learner_job() -> Job:
    return Job(program=LEARNER, mode="assert", limits=LIMITS, test=CHECK, entry_point="double")


def alone_between_after(job: Job, between: Job) -> tuple:
    """``job`` alone, then ``between``, then ``job`` again, on one worker (no preload): what ``between`` left for
    later jobs shows as a difference between the first and the last."""
    with SandboxPool(workers=1, preload=()) as pool:
        return pool.run_one(job), pool.run_one(between), pool.run_one(job)


def verdict(execution) -> tuple:
    return execution.passed, execution.status, execution.reason, execution.stdout


def test_a_learner_across_twenty_samples_on_one_worker_stays_at_zero():
    """IPC objects (SysV and POSIX) and keys do not outlive the job that made them: the learner finds nothing
    on every sample, so each of its 20 verdicts is the one it gets alone (the first)."""
    require_full_isolation()
    with SandboxPool(workers=1, preload=()) as pool:
        results = [pool.run_one(learner_job()) for _ in range(20)]
    alone = verdict(results[0])
    assert not results[0].passed and "('shm', 0)" in results[0].stdout, results[0]
    assert [verdict(r) for r in results] == [alone] * 20, [r.stdout for r in results]


def test_a_learner_across_three_commands_stays_at_zero():
    """Keys the sandbox uid (or the harness's session) holds do not outlive the command."""
    require_full_isolation()
    results = []
    for _ in range(3):
        with SandboxPool(workers=1, preload=()) as pool:
            results.append(pool.run_one(learner_job()))
    assert [verdict(r) for r in results] == [verdict(results[0])] * 3, [r.stdout for r in results]
    assert not any(r.passed for r in results)


IPC_AND_KEYS_LEFT = """
import os
objects = dict((kind, len(open("/proc/sysvipc/" + kind).read().splitlines()) - 1) for kind in ("shm", "sem", "msg"))
objects["mq"] = len(os.listdir("/dev/mqueue")) if os.path.isdir("/dev/mqueue") else 0
print(sorted(objects.items()))
""" + GOOD

MAKES_IPC = """
import ctypes, ctypes.util, os
libc = ctypes.CDLL(None, use_errno=True)
libc.shmat.restype = ctypes.c_void_p
segment = libc.shmget(0, 64 << 20, 0o1600)  # 64 MiB, touched: pinned while the segment lives
ctypes.memset(libc.shmat(segment, None, 0), 1, 64 << 20)
libc.semget(0, 4, 0o1600)
libc.msgget(0, 0o1600)
rt = ctypes.CDLL(ctypes.util.find_library("rt") or None, use_errno=True)
rt.mq_open(b"/left-behind", os.O_RDWR | os.O_CREAT, 0o600, None)
""" + GOOD


def test_no_ipc_object_of_a_job_exists_when_the_next_starts():
    require_full_isolation()
    check = Job(program=IPC_AND_KEYS_LEFT, mode="assert", limits=LIMITS, test=CHECK.replace("0) == 3", "2) == 4"),
                entry_point="double")
    with SandboxPool(workers=1, preload=()) as pool:
        made = pool.run_one(Job(program=MAKES_IPC, mode="assert", limits=LIMITS, test=check.test,
                                entry_point="double"))
        left = pool.run_one(check)
    assert made.passed, made
    assert left.passed and left.stdout == "[('mq', 0), ('msg', 0), ('sem', 0), ('shm', 0)]\n", left


def test_keyrings_are_shut_in_the_sandbox():
    """No program can add a key to any keyring (the sandbox uid's, the session's): nothing to carry over."""
    require_full_isolation()
    program = ("import ctypes\nlibc = ctypes.CDLL(None, use_errno=True)\n"
               f"print([libc.syscall({KEY_SYSCALLS[0]}, b'user', b'k-{LEARNER_TAG}', b'1', 1, ring) < 0 "
               "for ring in (-4, -3, -5)])\n" + GOOD)
    with SandboxPool(workers=1, preload=()) as pool:
        result = pool.run_one(Job(program=program, mode="assert", limits=LIMITS,
                                  test="def check(candidate):\n    assert candidate(2) == 4\n", entry_point="double"))
    assert result.passed and result.stdout == "[True, True, True]\n", result


UID = "import os\nprint(os.getuid())\n" + GOOD


@pytest.mark.skipif(os.geteuid() != 0, reason="programs run as the harness's own uid when it is not root")
def test_concurrent_pools_never_share_a_sandbox_uid():
    """Two commands on one machine (two pools open at once): every worker of each runs as a uid of its own."""
    require_full_isolation()
    uid_job = Job(program=UID, mode="assert", limits=LIMITS, test="def check(candidate):\n    assert candidate(2) == 4\n",
                  entry_point="double")
    with SandboxPool(workers=2, preload=()) as first, SandboxPool(workers=2, preload=()) as second:
        uids = [int(e.stdout) for pool in (first, second) for _, e in pool.run_many((i, uid_job) for i in range(8))]
        by_pool = [set(uids[:8]), set(uids[8:])]
    assert len(by_pool[0]) == 2 and len(by_pool[1]) == 2 and not by_pool[0] & by_pool[1], by_pool
    assert 0 not in by_pool[0] | by_pool[1]


# The calls the tests send ahead (300 of them, well over a 4 KiB pipe) must still not block the tests'
# process once a program has shrunk its channel's pipes.
MANY_CALLS = "def check(candidate):\n" + "    assert candidate(2) == 4\n" * 300
SPOILS_CHANNEL = """
import fcntl, os
for fd in range(3, 64):
    try:
        fcntl.fcntl(fd, fcntl.F_SETFL, fcntl.fcntl(fd, fcntl.F_GETFL) | os.O_NONBLOCK)
        fcntl.fcntl(fd, 1031, 4096)  # F_SETPIPE_SZ
    except OSError:
        pass
""" + GOOD


def test_channel_pipe_settings_do_not_reach_later_programs():
    """A program that sets O_NONBLOCK on its channel's pipes and shrinks them changes no later verdict: a
    correct program still passes, a syntax error is still an error (not a wall-clock timeout)."""
    require_full_isolation()
    later = {"good": GOOD, "syntax_error": "def double(x:\n    return 2 * x\n", "wrong": "def double(x):\n    return x\n"}

    def run(pool, program):
        return pool.run_one(Job(program=program, mode="assert", limits=LIMITS, test=MANY_CALLS, entry_point="double"))

    with SandboxPool(workers=1, preload=()) as pool:
        alone = {name: run(pool, program) for name, program in later.items()}
        run(pool, SPOILS_CHANNEL)
        after = {name: run(pool, program) for name, program in later.items()}
    assert alone["good"].passed and alone["syntax_error"].status == "syntax_error"
    assert {n: (e.status, e.reason) for n, e in after.items()} == {n: (e.status, e.reason) for n, e in alone.items()}


# A process that takes a while to die: tearing down 900 MiB it has touched takes the kernel about 0.25 s,
# longer than the clean-up used to try before it gave up.
LEFTOVER = """
import ctypes, os
r, w = os.pipe()
if os.fork() == 0:
    os.setsid()
    ctypes.CDLL(None).prctl(15, b"sealed-leftover", 0, 0, 0)  # PR_SET_NAME
    ballast = b"x" * (900 << 20)
    os.write(w, b"1")
    while True:
        pass
os.close(w)
os.read(r, 1)
""" + GOOD
COUNT_LEFTOVERS = """
import os
found = 0
for entry in os.listdir("/proc"):
    try:
        found += entry.isdigit() and open("/proc/%s/comm" % entry).read().strip() == "sealed-leftover"
    except OSError:
        pass
print("leftovers", found)
""" + GOOD


def test_no_process_of_a_job_is_alive_when_the_next_starts():
    require_full_isolation()
    test = "def check(candidate):\n    assert candidate(2) == 4\n"
    with SandboxPool(workers=1, preload=()) as pool:
        made = pool.run_one(Job(program=LEFTOVER, mode="assert", limits=LIMITS, test=test, entry_point="double"))
        left = pool.run_one(Job(program=COUNT_LEFTOVERS, mode="assert", limits=LIMITS, test=test, entry_point="double"))
    assert made.passed, made
    assert left.passed and left.stdout == "leftovers 0\n", left


# What an earlier job put through the server: its program, what it printed, the tests' reason. A later program
# reads every mapping of its own memory (it inherits the server's at fork) for the marks' form, and prints the
# marks it found; its own source holds only the pattern, which does not match itself.
MARK = "sealedmark"


def memory_scan(pattern: str) -> str:
    """Program text that reads every readable mapping of its own memory and sets ``found`` to the matches of
    the bytes regex ``pattern``'s one group."""
    return """
import re
found = set()
with open("/proc/self/maps") as maps, open("/proc/self/mem", "rb", 0) as memory:
    for line in maps:
        fields = line.split()
        if "r" not in fields[1] or fields[-1] in ("[vvar]", "[vsyscall]", "[vvar_vclock]"):
            continue
        start, end = (int(part, 16) for part in fields[0].split("-"))
        try:
            memory.seek(start)
            found.update(re.findall(rb"%s", memory.read(end - start)))
        except (OSError, OverflowError, ValueError):
            pass
""" % pattern


SCANS_ITS_MEMORY = memory_scan(MARK + "([0-9a-f]{32})") + "print(sorted(mark.decode() for mark in found))\n"


@pytest.mark.parametrize("mode", ["assert", "print_value"])
def test_a_program_finds_nothing_of_earlier_jobs_in_its_memory(mode):
    require_full_isolation()
    marks = {what: uuid.uuid4().hex for what in ("program", "printed", "reason")}
    earlier = (f"# {MARK}{marks['program']}\nprint('{MARK}' + {marks['printed']!r})\n"
               f"def double(x):\n    raise ValueError('{MARK}' + {marks['reason']!r})\n")
    test = "def check(candidate):\n    assert candidate(2) == 4\n"
    if mode == "assert":
        jobs = [Job(program=program, mode="assert", limits=LIMITS, test=test, entry_point="double")
                for program in (earlier, SCANS_ITS_MEMORY + GOOD)]
    else:
        jobs = [Job(program=program, mode="print_value", limits=LIMITS, expected="4", scorer="strict")
                for program in (earlier + "print(double(2))\n", SCANS_ITS_MEMORY + "print(4)\n")]
    with SandboxPool(workers=1, preload=()) as pool:
        for _ in range(2):  # a second time: a mark held only in a buffer a later job reuses counts too
            first, scan = pool.run_one(jobs[0]), pool.run_one(jobs[1])
    assert marks["reason"] in first.reason and marks["printed"] in first.stdout, first
    assert scan.status == "passed" and not set(marks.values()) & set(eval(scan.stdout.splitlines()[0])), \
        (scan.stdout, marks)


STOPS_ITS_PARENT = "import os, signal\nos.kill(os.getppid(), signal.SIGSTOP)\n" + GOOD


def test_a_program_that_stops_the_process_it_was_forked_from_changes_no_later_verdict():
    """Its parent is the zygote (same uid): the signal guard refuses the stop (EPERM, as from another uid, so
    the program ends in a PermissionError), and nothing of it hangs the worker or fails later programs."""
    require_full_isolation()
    test = "def check(candidate):\n    assert candidate(2) == 4\n"
    with SandboxPool(workers=1, preload=()) as pool:
        results = [pool.run_one(Job(program=program, mode="assert", limits=LIMITS, test=test, entry_point="double"))
                   for program in (STOPS_ITS_PARENT, GOOD, "def double(x):\n    return x\n")]
    assert [r.status for r in results] == ["error", "passed", "failed"], results
    assert "PermissionError" in results[0].reason, results[0]


# The zygote on its own, in a process standing for the server: two printed-value jobs through each way it forks.
# ``clone``: the program's process is the server's child (``CLONE_PARENT``), which waits for it itself; ``fork``
# (a machine whose clone is unknown here): the zygote's child, which the zygote reaps and reports.
ZYGOTE_ALONE = """
import json, os, random, sys, tempfile, time  # random: loaded before the fork, as a suite's preload may load it
from sandbox.inside import cheap_fork, zygote
from sandbox.inside.confine.children import rlimits
if sys.argv[1] == "fork":
    cheap_fork.ForkBeside.NUMBERS = {}
worker = zygote.Zygote(1024, None, False)
limits = rlimits({"memory_mb": 1024, "cpu_seconds": 5, "file_size_mb": 10, "open_files": 64})
program = "import os, random\\nprint([os.getppid(), os.environ['HOME'], random.random()])\\n"
runs = []
for _ in range(2):
    out_r, out_w = os.pipe()
    err_r, err_w = os.pipe()
    res_r, res_w = os.pipe()
    workdir = tempfile.mkdtemp()
    child, job_w = worker.spawn(b"p", workdir, (out_w, err_w, res_w))
    for fd in (out_w, err_w, res_w):
        os.close(fd)
    worker.hand_over(job_w, {"workdir": workdir, "limits": limits}, {"program": program, "scorer": "strict"})
    status, cpu = child.wait(time.monotonic() + 10)
    runs.append({"reported": child.reported, "status": status, "cpu": cpu, "workdir": workdir,
                 "printed": json.loads(os.read(res_r, 1 << 16))["value"]})
print(json.dumps({"server": os.getpid(), "zygote": worker.pid, "runs": runs}))
"""


@pytest.mark.parametrize("how", ["clone", "fork"])
def test_the_zygote_forks_beside_itself_where_it_can_and_reports_where_it_cannot(how):
    import json
    import subprocess
    import sys

    found = json.loads(subprocess.run([sys.executable, "-c", ZYGOTE_ALONE, how], capture_output=True, text=True,
                                      timeout=60, check=True, cwd=os.path.dirname(os.path.dirname(__file__))).stdout)
    parent = (found["server"], 0) if how == "clone" else (found["zygote"], 1)
    for run in found["runs"]:
        assert run["status"] == 0 and run["cpu"] > 0, run
        assert (run["printed"][0], run["reported"]) == parent and run["printed"][1] == run["workdir"], found
    # os.fork's at-fork hooks ran in each child either way: random, loaded before the fork, reseeded itself
    first, second = (run["printed"][2] for run in found["runs"])
    assert first != second, found


def test_a_job_larger_than_a_pipe_is_handed_over_whole():
    """The program's process reads its job from a pipe after its fork: one of 1 MiB (16 pipes' worth) arrives
    whole, for both kinds of job."""
    require_full_isolation()
    program = "PADDING = %r\n" % ("x" * (1 << 20)) + "print(len(PADDING))\n" + GOOD
    test = "def check(candidate):\n    assert candidate(2) == 4\n"
    with SandboxPool(workers=1, preload=()) as pool:
        calls = pool.run_one(Job(program=program, mode="assert", limits=LIMITS, test=test, entry_point="double"))
        printed = pool.run_one(Job(program=program, mode="print_value", limits=LIMITS, expected="1048576"))
    assert calls.passed and calls.stdout == "1048576\n", calls
    assert printed.passed, printed


# The PID namespace's counter: a program that forks until its last child's pid ends in chosen digits sets the
# next program's pid, a number the next program can read (os.getpid()).
def steers_pids(target: int) -> str:
    return ("import os\nwhile True:\n    pid = os.fork()\n    if pid == 0:\n        os._exit(0)\n"
            f"    os.waitpid(pid, 0)\n    if pid % 100 == {target}:\n        break\n" + GOOD)


def test_the_pid_a_program_gets_does_not_depend_on_the_job_before():
    require_full_isolation()
    test = "def check(candidate):\n    assert candidate(2) == 4\n"
    reads = Job(program="import os\nprint(os.getpid() % 100)\n" + GOOD, mode="assert", limits=LIMITS, test=test,
                entry_point="double")
    seen = []
    for target in (42, 77):
        with SandboxPool(workers=1, preload=()) as pool:
            pool.run_one(Job(program=steers_pids(target), mode="assert", limits=LIMITS, test=test, entry_point="double"))
            seen.append(pool.run_one(reads).stdout)
    assert seen[0] == seen[1], seen


def test_the_modules_a_program_finds_loaded_do_not_depend_on_the_jobs_before():
    """A printed-value job compiles through ``ast``; were it imported on the worker's first such job, a later
    program could tell from ``sys.modules`` whether one had run before it."""
    require_full_isolation()
    test = "def check(candidate):\n    assert candidate(2) == 4\n"
    reads = Job(program="import sys\nprint(sorted(sys.modules))\n" + GOOD, mode="assert", limits=LIMITS,
                test=test, entry_point="double")
    with SandboxPool(workers=1, preload=()) as pool:
        first = pool.run_one(reads).stdout
        assert pool.run_one(Job(program="print(1)\n", mode="print_value", limits=LIMITS, expected="1")).passed
        after = pool.run_one(reads).stdout
    assert first and first == after


# A learner that keeps its counter in how its process ended: it reads the last child's wait status wherever the
# zygote it was forked from may still hold it (any frame's locals: the stack it was forked on is its own) and
# exits with the next value, until the counter reaches the answer (3).
EXIT_STATUS_LEARNER = """
import os, sys
n = 0
frame = sys._getframe()
while frame is not None:
    for name, value in list(frame.f_locals.items()):
        if name == "status" and type(value) is int and os.WIFEXITED(value):
            n = max(n, os.WEXITSTATUS(value))
    frame = frame.f_back

def double(x):
    if n < 3:
        os._exit(n + 1)
    return n
"""


def test_how_the_last_job_ended_is_not_in_the_next_programs_stack():
    """The zygote reaps each child: its wait status and CPU time must not be left where the next child, forked
    from it, can read them (a counter carried in exit codes would pass from the fourth sample on)."""
    require_full_isolation()
    with SandboxPool(workers=1, preload=()) as pool:
        results = [pool.run_one(Job(program=EXIT_STATUS_LEARNER, mode="assert", limits=LIMITS, test=CHECK,
                                    entry_point="double")) for _ in range(5)]
    assert [r.reason for r in results] == [results[0].reason] * 5, [r.reason for r in results]
    assert not any(r.passed for r in results)


# A learner that keeps its counter in the page faults of the processes the worker keeps between jobs: the
# zygote adds each child's to its own count of its children's (``cminflt`` in /proc/<pid>/stat), so a program
# touches pages until that count is in the band of the next value. The tests' process and the server keep
# such counts too; a program must not be able to read any of them.
PAGE_FAULT_LEARNER = """
import os
STEP = 4000  # pages per value of the counter
counts = []
for entry in os.listdir("/proc"):
    if entry.isdigit() and int(entry) != os.getpid():
        try:
            counts.append(int(open("/proc/%s/stat" % entry).read().rsplit(")", 1)[1].split()[8]))
        except OSError:
            pass
n = max(counts, default=0) // STEP
ballast = bytearray(max((n + 1) * STEP + STEP // 2 - max(counts, default=0), 1) * 4096)
for i in range(0, len(ballast), 4096):
    ballast[i] = 1

def double(x):
    return n
"""


@pytest.mark.skipif(os.geteuid() != 0, reason="remounting /proc needs root (bubblewrap as an unprivileged user cannot)")
def test_the_workers_processes_are_not_visible_to_programs():
    """No program reads the counters of the processes that outlive its job (the server, the zygote, the tests'
    process): a counter kept in their page faults would pass from the fourth sample on."""
    require_full_isolation()
    with SandboxPool(workers=1, preload=()) as pool:
        results = [pool.run_one(Job(program=PAGE_FAULT_LEARNER, mode="assert", limits=LIMITS, test=CHECK,
                                    entry_point="double")) for _ in range(5)]
        # The remount's capability (given to the shell that starts the server) is nowhere left to a program.
        capabilities = pool.run_one(Job(program=CAPABILITIES, mode="assert", limits=LIMITS, test=CHECK.replace(
            "0) == 3", "2) == 4"), entry_point="double"))
    assert [r.reason for r in results] == [results[0].reason] * 5, [r.reason for r in results]
    assert not any(r.passed for r in results)
    assert capabilities.passed and capabilities.stdout == "['0000000000000000'] * 5\n", capabilities


CAPABILITIES = ("""
fields = dict(line.split(":\\t") for line in open("/proc/self/status").read().splitlines() if line.startswith("Cap"))
values = [fields[name] for name in ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb")]
print("%r * %d" % (values[:1], len(values)) if len(set(values)) == 1 else values)
""" + GOOD)


# A learner that keeps its counter on its job directory, which stays empty and private, so that it is reused for
# the next job: in its times (os.utime), an extended attribute, and two of its inode flags (chattr's d and A).
DIRECTORY_LEARNER = """
import array, fcntl, os
found = {}
info = os.stat(".")
found["mtime"], found["atime"] = (int(t) if t < 100 else 0 for t in (info.st_mtime, info.st_atime))
try:
    found["xattr"] = int(os.getxattr(".", "user.learner"))
except OSError:
    found["xattr"] = 0
flags = array.array("l", [0])
fd = os.open(".", os.O_RDONLY)
try:
    fcntl.ioctl(fd, 0x80086601, flags)  # FS_IOC_GETFLAGS
except OSError:
    pass
found["flags"] = bool(flags[0] & 0x40) + 2 * bool(flags[0] & 0x80)  # FS_NODUMP_FL, FS_NOATIME_FL
print(sorted(found.items()))
n = max(found.values()) + 1
os.utime(".", (n, n))
try:
    os.setxattr(".", "user.learner", str(n).encode())
except OSError:
    pass
try:
    fcntl.ioctl(fd, 0x40086602, array.array("l", [flags[0] | 0x40 * (n & 1) | 0x80 * (n >> 1 & 1)]))
except OSError:
    pass

def double(x):
    return n
"""


def test_what_a_program_sets_on_its_directory_does_not_reach_the_next():
    """A clean job directory is reused; its metadata must then be the server's, not what the last program set:
    a counter kept there would pass from the third sample on."""
    require_full_isolation()
    with SandboxPool(workers=1, preload=()) as pool:
        results = [pool.run_one(Job(program=DIRECTORY_LEARNER, mode="assert", limits=LIMITS, test=CHECK,
                                    entry_point="double")) for _ in range(4)]
    assert [verdict(r) for r in results] == [verdict(results[0])] * 4, [r.stdout for r in results]
    assert not results[0].passed and "('mtime', 0)" in results[0].stdout, results[0]


# A learner that counts the job directories earlier jobs were given: a job that leaves its directory dirty gets the
# next job a fresh one, whose path the zygote is sent (it sets HOME and TMPDIR for the programs it forks) and may
# keep in its memory, which every later program inherits. It dirties its own, and answers how many it found.
WORKDIR_NAME_LEARNER = memory_scan("/exec-([0-9a-f]{12})") + """
import os
n = len(found - {os.path.basename(os.getcwd())[5:].encode()})
print(n)
open("dirty", "w").close()

def double(x):
    return n
"""


def test_the_directories_of_earlier_jobs_are_not_in_a_programs_memory():
    require_full_isolation()
    with SandboxPool(workers=1, preload=()) as pool:
        results = [pool.run_one(Job(program=WORKDIR_NAME_LEARNER, mode="assert", limits=LIMITS, test=CHECK,
                                    entry_point="double")) for _ in range(5)]
    assert [verdict(r) for r in results] == [verdict(results[0])] * 5, [r.stdout for r in results]
    assert results[0].stdout == "0\n", results[0]


# Learners that keep their counter in a number the kernel hands out in sequence and that outlives the job in the
# worker's namespaces: the inode numbers of the server's own /tmp (a file made and removed still moves them) and
# the ids of SysV IPC objects (made and removed within the job: none is left for the clean-up to find). Each reads
# the next number, and makes numbers until the count reaches the band of its answer.
COUNTER_LEARNERS = {
    "tmp_inodes": """
import os
def next_number():
    open("probe", "w").close()
    number = os.stat("probe").st_ino
    os.remove("probe")
    return number
""",
    "sysv_ids": """
import ctypes
libc = ctypes.CDLL(None)
def next_number():
    ident = libc.shmget(0, 4096, 0o1600)  # IPC_PRIVATE
    libc.shmctl(ident, 0, None)  # IPC_RMID
    return ident
""",
}
COUNTER_LEARNER = """
STEP = 200
n = next_number() // STEP
while next_number() < (n + 1) * STEP + STEP // 2:
    pass

def double(x):
    return n
"""


@pytest.mark.parametrize("counter", sorted(COUNTER_LEARNERS))
def test_a_counter_the_kernel_hands_out_does_not_carry_a_learner(counter):
    require_full_isolation()
    program = COUNTER_LEARNERS[counter] + COUNTER_LEARNER
    with SandboxPool(workers=1, preload=()) as pool:
        results = [pool.run_one(Job(program=program, mode="assert", limits=LIMITS, test=CHECK, entry_point="double"))
                   for _ in range(5)]
    assert [verdict(r) for r in results] == [verdict(results[0])] * 5, [r.reason for r in results]


# What benchmark programs ordinarily do, none of which may cost its server: each seal above ends a server only for
# a job that moved something a later program could read (forked, made files or IPC objects, changed the worker).
ORDINARY = [
    Job(program=GOOD, mode="assert", limits=LIMITS, test="def check(candidate):\n    assert candidate(2) == 4\n",
        entry_point="double"),
    Job(program=GOOD, mode="assert", limits=LIMITS, test=CHECK, entry_point="double"),
    Job(program="def double(x):\n    return {}[x]\n", mode="assert", limits=LIMITS, test=CHECK, entry_point="double"),
    Job(program="def double(x:\n", mode="assert", limits=LIMITS, test=CHECK, entry_point="double"),
    Job(program="def f(n):\n    return f(n + 1)\nf(0)\n", mode="print_value", limits=LIMITS, expected="1"),
    Job(program="import numpy as np\nprint(int(np.arange(10).sum()))\n", mode="print_value", limits=LIMITS,
        expected="45"),
    Job(program="import pandas as pd\nprint(pd.Series([1, 2]).tolist())\n", mode="print_value", limits=LIMITS,
        expected="[1, 2]"),
    Job(program="print(open('/proc/self/status').read() and sorted({3, 1, 2}))\n", mode="print_value", limits=LIMITS,
        expected="[1, 2, 3]"),
]


def test_ordinary_programs_keep_their_server():
    require_full_isolation()
    with SandboxPool(workers=1, preload=("numpy", "pandas")) as pool:
        server = pool.server_pid(0)
        statuses = []
        for job in ORDINARY * 2:
            statuses.append(pool.run_one(job).status)
            assert pool.server_pid(0) == server, f"the server was replaced after {job.program!r}"
        pool.run_one(ORDINARY[0])  # a server that ended after the last job is found by the next
        assert pool.server_pid(0) == server and pool.servers_replaced == 0
    assert statuses[:8] == ["passed", "failed", "failed", "syntax_error", "error", "passed", "passed", "passed"], statuses
