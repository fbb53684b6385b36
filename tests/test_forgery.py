"""Forgery attempts against both kinds of scorer, through the real sandbox.

Each trick is tried twice: around a wrong solution (it must fail) and around a right one. Where the trick
leaves the program able to deliver its values, the right solution must still pass (the trick changed
nothing); where the trick ends the program or attacks the tests' process, it fails too, as it would
under the original harness.
"""

from __future__ import annotations

import json
import os

import pytest

from sandbox.isolation import probe
from sandbox.pool import Job, Limits, SandboxPool

LIMITS = Limits(wall_seconds=20, cpu_seconds=10, memory_mb=2048)

# ----------------------------------------------------------------------------- assert-style tricks
HELPERS = 'def double(x):\n    """Twice x."""\n'
TEST = ("def check(candidate):\n    assert candidate(2) == 4\n    assert candidate(-3) == -6\n"
        "    assert candidate(10) == 20\n")
RIGHT, WRONG = "2 * x", "x + 2"  # the wrong one is right for 2 only

PASSING_REPORT = ('b\'{"passed": true, "status": "passed", "reason": "", "turn": null, "id": "0", '
                  '"stdout": "", "stderr": "", "duration": 0.0}\\n\'')

# name -> (program as a function of the returned expression, does the right solution still pass?)
ASSERT_TRICKS: dict[str, tuple[str, bool]] = {
    "issue: report from the caller's frame, then os._exit(0)": (
        "def double(x):\n    return {e}\n"
        "import sys, os\ntry:\n    sys._getframe(1).f_locals['report'](True, 'passed', '', None)\n"
        "except Exception:\n    pass\n", True),
    "walk every frame for report and job": (
        "import sys\ndef double(x):\n    return {e}\n"
        "f = sys._getframe()\nwhile f is not None:\n"
        "    for k, v in list(f.f_locals.items()):\n"
        "        if isinstance(v, dict) and 'test' in v:\n            v['test'] = 'def check(c):\\n    pass\\n'\n"
        "        if k == 'report' and callable(v):\n"
        "            try:\n                v({'passed': True, 'status': 'passed', 'reason': ''})\n"
        "            except Exception:\n                pass\n"
        "    f = f.f_back\n", True),
    "gc: rewrite any job's tests, call any report": (
        "import gc\ndef double(x):\n    return {e}\n"
        "for o in gc.get_objects():\n"
        "    if isinstance(o, dict) and 'test' in o:\n        o['test'] = 'def check(c):\\n    pass\\n'\n"
        "    if isinstance(o, dict) and 'expected' in o:\n        o['expected'] = 'None'\n", True),
    "patch builtins.exec and compile": (
        "import builtins\ndef double(x):\n    return {e}\n"
        "builtins.exec = lambda *a, **k: None\nbuiltins.compile = lambda *a, **k: compile('pass', '', 'exec')\n",
        True),
    "patch builtins.bool and AssertionError": (
        "import builtins\ndef double(x):\n    return {e}\n"
        "builtins.bool = lambda *a: True\nbuiltins.AssertionError = type('AssertionError', (BaseException,), {})\n",
        True),
    "patch json.dumps and the json module everywhere": (
        "import json, sys\ndef double(x):\n    return {e}\n"
        "json.dumps = lambda *a, **k: '{\"passed\": true, \"status\": \"passed\", \"reason\": \"\"}'\n"
        "for m in list(sys.modules.values()):\n"
        "    if getattr(m, 'json', None) is json:\n        m.json = json\n", True),
    "redefine check": ("def double(x):\n    return {e}\ndef check(candidate):\n    pass\n", True),
    "redefine candidate and the entry point's name": (
        "def double(x):\n    return {e}\ncandidate = lambda x: 2 * x\n", True),
    "int subclass whose __eq__ is always True": (
        "class Liar(int):\n    def __eq__(self, other):\n        return True\n    __hash__ = int.__hash__\n"
        "def double(x):\n    return Liar({e})\n", True),
    "int subclass with odd __hash__, __bool__, __ne__": (
        "class Liar(int):\n    def __eq__(self, other):\n        return True\n    def __ne__(self, other):\n"
        "        return False\n    def __hash__(self):\n        return 0\n    def __bool__(self):\n        return True\n"
        "def double(x):\n    return Liar({e})\n", True),
    "issue: object whose __eq__ is always True": (
        "class A:\n    def __eq__(self, other):\n        return True\n"
        "def double(x):\n    return A() if x != 2 else {e}\n", False),
    "__eq__ returning an object that is always truthy": (
        "class T:\n    def __bool__(self):\n        return True\n"
        "class A(int):\n    def __eq__(self, other):\n        return T()\n"
        "def double(x):\n    return A({e})\n", True),
    "float subclass with __sub__ returning 0": (
        "class F(float):\n    def __sub__(self, other):\n        return 0.0\n    def __eq__(self, other):\n"
        "        return True\n    __hash__ = float.__hash__\n"
        "def double(x):\n    return int(F({e}))\n", True),
    # It reaches only its own descriptors, channel to the tests included: it garbles its own answers.
    "guessed descriptors: a passing report on every fd": (
        "import os\ndef double(x):\n    return {e}\n"
        "for fd in range(0, 1024):\n    try:\n        os.write(fd, " + PASSING_REPORT + ")\n"
        "    except OSError:\n        pass\n", False),
    "other processes' descriptors through /proc": (
        "import os\ndef double(x):\n    return {e}\n"
        "for pid in os.listdir('/proc'):\n    if not pid.isdigit() or int(pid) == os.getpid():\n        continue\n"
        "    try:\n        fds = os.listdir('/proc/%s/fd' % pid)\n    except OSError:\n        continue\n"
        "    for fd in fds:\n        try:\n            with open('/proc/%s/fd/%s' % (pid, fd), 'wb') as h:\n"
        "                h.write(" + PASSING_REPORT + ")\n        except OSError:\n            pass\n", True),
    "read the tests out of other processes' memory": (
        "import os, re\ndef double(x):\n    return {e}\n"
        "for pid in os.listdir('/proc'):\n    if not pid.isdigit() or int(pid) == os.getpid():\n        continue\n"
        "    try:\n        open('/proc/%s/mem' % pid, 'rb').read(1)\n        raise SystemExit('read another process')\n"
        "    except OSError:\n        pass\n", True),
    "look for the tests in its own memory": (
        "import re\nNEEDLE = ('assert cand' + 'idate(').encode()\n"
        "def scan():\n    found = {}\n    with open('/proc/self/maps') as maps, open('/proc/self/mem', 'rb') as mem:\n"
        "        for line in maps:\n            span, perms = line.split()[:2]\n            if 'r' not in perms:\n"
        "                continue\n            lo, hi = (int(p, 16) for p in span.split('-'))\n"
        "            try:\n                mem.seek(lo)\n                chunk = mem.read(hi - lo)\n            except (OSError, OverflowError, ValueError):\n"
        "                continue\n"
        "            for m in re.finditer(re.escape(NEEDLE) + rb'(-?\\d+)\\) == (-?\\d+)\\n', chunk):\n"
        "                found[int(m.group(1))] = int(m.group(2))\n    return found\n"
        "FOUND = scan()\n"
        "def double(x):\n    return FOUND.get(x, {e})\n", True),
    "signals to the parent": (
        "import os, signal\ndef double(x):\n    return {e}\n"
        "for s in (signal.SIGUSR1, signal.SIGTERM, signal.SIGINT):\n    try:\n        os.kill(os.getppid(), s)\n"
        "    except OSError:\n        pass\n", True),
    "SIGINT to every other process (a KeyboardInterrupt in the tests)": (
        "import os, signal\ndef double(x):\n    return {e}\n"
        "for pid in range(2, 1000):  # by number: /proc need not list them\n    if pid != os.getpid():\n        try:\n"
        "            os.kill(pid, signal.SIGINT)\n        except OSError:\n            pass\n", True),
    "SIGKILL to every other process through pidfds (pidfd_send_signal)": (
        "import os, signal\ndef double(x):\n    return {e}\n"
        "for pid in range(2, 1000):\n    if pid != os.getpid():\n        try:\n            fd = os.pidfd_open(pid)\n"
        "        except OSError:\n            continue\n        try:\n"
        "            signal.pidfd_send_signal(fd, signal.SIGKILL)\n        except OSError:\n            pass\n", True),
    "SIGIO to every other process from the channel's pipes (F_SETOWN, O_ASYNC)": (
        "import fcntl, os\ndef double(x):\n    return {e}\n"
        "others = [pid for pid in range(2, 1000) if pid != os.getpid()]\n"
        "for fd in range(3, 64):\n    for pid in others:\n        try:\n            fcntl.fcntl(fd, fcntl.F_SETOWN, pid)\n"
        "        except OSError:\n            continue\n        try:\n"
        "            fcntl.fcntl(fd, fcntl.F_SETFL, fcntl.fcntl(fd, fcntl.F_GETFL) | os.O_ASYNC)\n"
        "        except OSError:\n            pass\n", True),
    "atexit hook that reports after the tests": (
        "import atexit, os\ndef double(x):\n    return {e}\n"
        "def late():\n    for fd in range(3, 64):\n        try:\n            os.write(fd, " + PASSING_REPORT + ")\n"
        "        except OSError:\n            pass\n    os._exit(0)\natexit.register(late)\n", True),
    "thread that looks for a reporter in every thread's frames": (
        "import sys, threading\ndef double(x):\n    return {e}\n"
        "def hunt():\n    for frame in list(sys._current_frames().values()):\n        while frame is not None:\n"
        "            for key in ('report', 'result_pipe', 'res_w'):\n                if key in frame.f_locals:\n"
        "                    raise SystemExit('found ' + key)\n            frame = frame.f_back\n"
        "t = threading.Thread(target=hunt)\nt.start()\nt.join()\n", True),
    "success lines on stdout, then os._exit(0)": (
        "import os\ndef double(x):\n    return {e}\n"
        "print('passed')\nprint('{\"passed\": true, \"status\": \"passed\"}')\nos._exit(0)\n", False),
    "os._exit(0) inside the function": (
        "import os\ndef double(x):\n    if x != 2:\n        os._exit(0)\n    return {e}\n", False),
    "sys.exit inside the function, in case the tests catch exceptions": (
        "import sys\ndef double(x):\n    if x != 2:\n        sys.exit(0)\n    return {e}\n", False),
    "raise an exception named AssertionError... of a custom kind": (
        "class AssertionError(BaseException):\n    pass\n"
        "def double(x):\n    if x != 2:\n        raise AssertionError('skip')\n    return {e}\n", False),
    "list subclass pretending to equal everything": (
        "class L(list):\n    def __eq__(self, other):\n        return True\n"
        "def double(x):\n    return L([{e}])[0] if x == 2 else L([{e}])\n", False),
    # The server's modules are a ``sandbox`` package in every process forked from it: the program's copy is
    # its own, and what decides runs in the tests' process.
    "replace the sandbox package's deciding modules in its own process": (
        "import sys\ndef double(x):\n    return {e}\n"
        "def passed(*a, **k):\n    report = [v for v in a if callable(v)]\n"
        "    for r in report:\n        r({'passed': True, 'status': 'passed', 'reason': ''})\n"
        "for name, module in list(sys.modules.items()):\n    if name.startswith('sandbox'):\n"
        "        for attr in ('run_tests', 'evalplus_tiers', '_rebuilt_exception', 'reply'):\n"
        "            if hasattr(module, attr):\n                setattr(module, attr, passed)\n"
        "sys.modules['sandbox.inside.job.checking'] = sys.modules['sandbox.inside.job.proxies'] = None\n", True),
    "answer every call with the value its reply-maker gets, wrapped as passed": (
        "import sys\ndef double(x):\n    return {e}\n"
        "candidate = sys.modules['sandbox.inside.job.candidate']\nreal = candidate._result\n"
        "def _result(value, classes, handles):\n    reply = real(value, classes, handles)\n"
        "    reply.update(passed=True, status='passed', done=True)\n    return reply\n"
        "candidate._result = _result\n", True),
    # The calls sent ahead in batches (``sandbox.inside.job.plan``): whatever the program does to the stream, the
    # tests read one reply per call and decide on the values alone.
    "replay the first call's reply for every later call": (
        "import sys\ndef double(x):\n    return {e}\n"
        "Link = sys.modules['sandbox.inside.wire.channel'].Link\nsend, first = Link.send, []\n"
        "def replay(self, message):\n    if 'value' in message:\n        first.append(first[0] if first else message)\n"
        "        message = first[-1]\n    send(self, message)\nLink.send = replay\n", False),
    "answer a batch's calls in reverse order": (
        "import sys\ndef double(x):\n    return {e}\n"
        "Link = sys.modules['sandbox.inside.wire.channel'].Link\nrecv = Link.recv\n"
        "def reversed_batch(self):\n    request = recv(self)\n    if isinstance(request, dict) and 'batch' in request:\n"
        "        request['batch'].reverse()\n    return request\nLink.recv = reversed_batch\n", False),
    "extra replies and an early end mark after every reply": (
        "import sys\ndef double(x):\n    return {e}\n"
        "Link = sys.modules['sandbox.inside.wire.channel'].Link\nsend = Link.send\n"
        "def more(self, message):\n    send(self, message)\n    if 'value' in message:\n"
        "        send(self, {'value': 4})\n        send(self, {'done': True})\nLink.send = more\n", False),
    "close every descriptor during the second call": (
        "import os\ndef double(x):\n    if x == -3:\n        os.closerange(3, 1024)\n    return {e}\n", False),
    "int subclass whose __eq__ and __hash__ raise": (
        "class Bad(int):\n    def __eq__(self, other):\n        raise RuntimeError('eq')\n"
        "    def __hash__(self):\n        raise RuntimeError('hash')\n"
        "def double(x):\n    return Bad({e})\n", True),
    "kill its own process group and the tests' process": (
        "import os, signal\ndef double(x):\n    return {e}\nos.kill(-1, signal.SIGKILL)\n", False),  # EPERM: an error
}

# Without a PID namespace these would reach the host's processes (pytest's own descriptors, signals).
NEED_PID_NAMESPACE = {"other processes' descriptors through /proc", "read the tests out of other processes' memory",
                      "signals to the parent", "SIGINT to every other process (a KeyboardInterrupt in the tests)",
                      "SIGKILL to every other process through pidfds (pidfd_send_signal)",
                      "SIGIO to every other process from the channel's pipes (F_SETOWN, O_ASYNC)",
                      "kill its own process group and the tests' process"}
PID_NAMESPACE = probe("auto").layers["pid_namespace"]


def require_pid_namespace() -> None:
    """Skip a trick that would reach the host's processes without a PID namespace, except under ``CI=true``:
    CI installs bubblewrap, so there a missing namespace is a failure, not a skip (as in the hostile tests)."""
    if PID_NAMESPACE:
        return
    if os.environ.get("CI") == "true":
        pytest.fail("no PID namespace (bubblewrap missing or unable to create one): CI must run every trick")
    pytest.skip("without a PID namespace it would reach the host's processes")

# ----------------------------------------------------------------------------- printed-value tricks
EXPECTED = 1234
RIGHT_VALUE, WRONG_VALUE = "1234", "1233"

# name -> (program as a function of the honest value, scorers it is tried under, does the right value pass?)
PRINTED_TRICKS: dict[str, tuple[str, tuple[str, ...], bool]] = {
    "issue: the expected value from the caller's frame": (
        "import sys, ast\ntry:\n    print(ast.literal_eval(sys._getframe(1).f_locals['job']['expected']))\n"
        "except Exception:\n    print({v})\n", ("mtpb", "strict"), True),
    "any frame's 'expected'": (
        "import sys, ast\nfound = None\nf = sys._getframe()\nwhile f is not None:\n"
        "    for k, v in list(f.f_locals.items()):\n        if k == 'expected' or (isinstance(v, dict) and 'expected' in v):\n"
        "            found = v if k == 'expected' else v['expected']\n    f = f.f_back\n"
        "print(ast.literal_eval(found) if isinstance(found, str) and found else {v})\n", ("mtpb", "strict"), True),
    "gc: any dict with 'expected'": (
        "import gc, ast\nfound = [o['expected'] for o in gc.get_objects() if isinstance(o, dict) and o.get('expected')]\n"
        "print(ast.literal_eval(found[0]) if found else {v})\n", ("mtpb", "strict"), True),
    "int subclass whose __eq__ is always True": (
        "class Liar(int):\n    def __eq__(self, other):\n        return True\n    __hash__ = int.__hash__\n"
        "print(Liar({v}))\n", ("mtpb", "strict"), True),
    "str subclass whose __eq__ is always True (MTPB casts to int)": (
        "class S(str):\n    def __eq__(self, other):\n        return True\n    __hash__ = str.__hash__\n"
        "    def __int__(self):\n        return int(str.__str__(self))\n"
        "print(S('{v}'))\n", ("mtpb", "strict"), True),
    "__int__ returning an int subclass with odd __eq__": (
        "class Liar(int):\n    def __eq__(self, other):\n        return True\n    __hash__ = int.__hash__\n"
        "class Box:\n    def __int__(self):\n        return Liar({v})\n"
        "print(Box())\n", ("mtpb",), True),
    # A Series's values are one-dimensional: one number, even the expected one or near it (np.allclose's 1e-5),
    # is no Series's.
    "a fake pandas Series": (
        "class Series:\n    __module__ = 'pandas'\n    def to_numpy(self):\n        return {v}\n"
        "Series.__qualname__ = Series.__name__ = 'Series'\nprint(Series())\n", ("mtpb",), False),
    "a fake pandas Series holding one number near the value": (
        "class Series:\n    __module__ = 'pandas'\n    def to_numpy(self):\n        return {v} + 0.99\n"
        "Series.__qualname__ = Series.__name__ = 'Series'\nprint(Series())\n", ("mtpb",), False),
    "patched builtins.print and sys.modules": (
        "import builtins, sys\nsys.modules['json'] = None\nreal = builtins.print\n"
        "builtins.print = lambda *a, **k: real(*a, **k)\nprint({v})\n", ("mtpb", "strict"), True),
    # A made-up report can only claim a value (as printing does), and garbles the real one.
    "guessed descriptors: a passing report on every fd": (
        "import os\nprint({v})\nfor fd in range(3, 1024):\n    try:\n"
        "        os.write(fd, b'{\"passed\": true, \"status\": \"passed\"}')\n    except OSError:\n        pass\n",
        ("mtpb", "strict"), False),
    "success lines on stdout, then os._exit(0)": (
        "import os, sys\nprint({v})\nsys.stdout.write('passed\\n')\nsys.stdout.flush()\nos._exit(0)\n", ("strict",), False),
    # np.allclose broadcasts an empty array against anything: an empty "Series" must not match a number.
    "an empty fake pandas Series": (
        "class Series:\n    __module__ = 'pandas.core.series'\n    def to_numpy(self):\n        return []\n"
        "Series.__qualname__ = Series.__name__ = 'Series'\nprint(Series())\n", ("mtpb",), False),
    "a forged empty-Series report on every fd, then os._exit(0)": (
        "import json, os\nline = json.dumps({'value': [], 'series': True}).encode() + b'\\n'\n"
        "for fd in range(3, 64):\n    try:\n        os.write(fd, line)\n    except OSError:\n        pass\n"
        "os._exit(0)\n", ("mtpb",), False),
    "atexit hook printing later": (
        "import atexit\natexit.register(lambda: print(0))\nprint({v})\n", ("mtpb", "strict"), True),
}


def _assert_job(program: str) -> Job:
    return Job(program=program, mode="assert", limits=LIMITS, test=TEST, entry_point="double", helpers=HELPERS)


def _printed_job(program: str, scorer: str) -> Job:
    return Job(program=program, mode="print_value", limits=LIMITS, expected=repr(EXPECTED), scorer=scorer)


@pytest.fixture(scope="module")
def verdicts():
    jobs = []
    for name, (template, _) in ASSERT_TRICKS.items():
        if name in NEED_PID_NAMESPACE and not PID_NAMESPACE:
            continue  # never run where it could reach the host: its test skips, or fails under CI
        jobs.append(((name, "assert", "wrong"), _assert_job(template.replace("{e}", WRONG))))
        jobs.append(((name, "assert", "right"), _assert_job(template.replace("{e}", RIGHT))))
    for name, (template, scorers, _) in PRINTED_TRICKS.items():
        for scorer in scorers:
            jobs.append(((name, scorer, "wrong"), _printed_job(template.replace("{v}", WRONG_VALUE), scorer)))
            jobs.append(((name, scorer, "right"), _printed_job(template.replace("{v}", RIGHT_VALUE), scorer)))
    with SandboxPool(workers=2, preload=()) as pool:
        return dict(pool.run_many(jobs))


def test_there_are_at_least_thirty_attempts():
    attempts = len(ASSERT_TRICKS) + sum(len(scorers) for _, scorers, _ in PRINTED_TRICKS.values())
    assert attempts >= 30, attempts


@pytest.mark.parametrize("name", list(ASSERT_TRICKS))
def test_assert_forgery_fails(verdicts, name):
    if name in NEED_PID_NAMESPACE:
        require_pid_namespace()
    wrong = verdicts[(name, "assert", "wrong")]
    assert not wrong.passed, wrong
    right = verdicts[(name, "assert", "right")]
    assert right.passed is ASSERT_TRICKS[name][1], right


@pytest.mark.parametrize("name,scorer", [(n, s) for n, (_, scorers, _) in PRINTED_TRICKS.items() for s in scorers])
def test_printed_value_forgery_fails(verdicts, name, scorer):
    wrong = verdicts[(name, scorer, "wrong")]
    assert not wrong.passed, wrong
    right = verdicts[(name, scorer, "right")]
    # The strict scorer wants the same type: a subclass of int or str is not plain data there.
    expect_right = PRINTED_TRICKS[name][2] and not (scorer == "strict" and name.startswith(("int subclass", "str subclass")))
    assert right.passed is expect_right, right


def test_unencodable_values_fail_with_a_clear_reason(verdicts):
    reason = verdicts[("issue: object whose __eq__ is always True", "assert", "wrong")].reason
    assert "cannot cross to the tests" in reason and "A" in reason, reason
    reason = verdicts[("int subclass whose __eq__ is always True", "strict", "right")].reason
    assert "not plain data" in reason, reason


def test_exits_during_a_call_are_not_exceptions_the_tests_can_catch(verdicts):
    exited = verdicts[("sys.exit inside the function, in case the tests catch exceptions", "assert", "wrong")]
    assert exited.status == "failed" and "SystemExit" in exited.reason, exited
    gone = verdicts[("os._exit(0) inside the function", "assert", "wrong")]
    assert gone.status == "exited" and "exited with code 0" in gone.reason, gone


TAMPER_WITH_THE_TESTS_PROCESS = RIGHT_PROGRAM = "def double(x):\n    return 2 * x\n"
TAMPER_WITH_THE_TESTS_PROCESS += (
    "import os, resource\n"
    "for pid in range(2, 1000):  # by number: /proc need not list them\n    if pid == os.getpid():\n        continue\n"
    "    for change in (lambda p: resource.prlimit(p, resource.RLIMIT_NOFILE, (3, 3)),\n"
    "                   lambda p: os.setpriority(os.PRIO_PROCESS, p, 19)):\n"
    "        try:\n            change(int(pid))\n        except OSError:\n            pass\n")


def test_a_program_cannot_break_the_next_programs_tests():
    """The tests' process is kept between jobs; one whose limits or priority a program lowered (same uid:
    prlimit and setpriority are allowed) is replaced before the next job."""
    require_pid_namespace()
    wrong = _assert_job("def double(x):\n    return x + 2\n")
    importing = Job(program=RIGHT_PROGRAM, mode="assert", limits=LIMITS, test="import fractions\n" + TEST,
                    entry_point="double")  # opens files: it fails where the tests' process may not
    with SandboxPool(workers=1, preload=()) as pool:
        results = [pool.run_one(job) for job in (_assert_job(TAMPER_WITH_THE_TESTS_PROCESS), importing, wrong,
                                                 _assert_job(RIGHT_PROGRAM))]
    assert [r.passed for r in results] == [True, True, False, True], results


def test_a_tests_process_no_program_touched_is_kept():
    """The other half: the tests' process restores its own limits before it reports, so the server's check
    after the job finds it as it was and keeps it (it used to race the report and replace it under load)."""
    test = ("import os\ndef check(candidate):\n    assert candidate(2) == 4\n"
            "    raise AssertionError('tests in %d' % os.getpid())\n")
    with SandboxPool(workers=1, preload=()) as pool:
        reasons = {pool.run_one(Job(program=RIGHT_PROGRAM, mode="assert", limits=LIMITS, test=test,
                                    entry_point="double")).reason for _ in range(100)}
    assert len(reasons) == 1 and "tests in" in next(iter(reasons)), reasons


FIND_ZERO_REFERENCE = (  # HumanEval/32's prompt and canonical solution: its check is |poly(xs, x)| <= atol
    "import math\n"
    "def poly(xs, x):\n    return sum([coeff * math.pow(x, i) for i, coeff in enumerate(xs)])\n"
    "def find_zero(xs):\n    begin, end = -1., 1.\n"
    "    while poly(xs, begin) * poly(xs, end) > 0:\n        begin *= 2.0\n        end *= 2.0\n"
    "    while end - begin > 1e-10:\n        center = (begin + end) / 2.0\n"
    "        if poly(xs, center) * poly(xs, begin) > 0:\n            begin = center\n"
    "        else:\n            end = center\n    return begin\n")
# math and copy are imported by the server before any fork (``COMMON_IMPORTS``), so the tests' process has
# the very modules the program's process has: HumanEval/32's check calls math.pow there, evalplus copies each
# input with copy.deepcopy there.
PATCH_SHARED_MODULES = "import copy, math\nmath.pow = lambda *a: 0.0\ncopy.deepcopy = lambda x, memo=None: [[0]]\n"


def test_modules_the_server_imported_are_the_tests_process_own():
    """A program that patches the modules the server imported for everyone (``math.pow``, which would make
    any answer a zero of the polynomial; ``copy.deepcopy``, which would change the inputs) changes them in its
    own process only: the tests' process, forked from the server, checks with the real ones."""
    spec = json.dumps({"base": [[[1, 2]], [[-6, 11, -6, 1]]], "plus": [[[2, -3, 0, 1, 1, -1]]], "atol": 1e-6})
    right = PATCH_SHARED_MODULES + FIND_ZERO_REFERENCE.replace("math.pow(x, i)", "x ** i")

    def evalplus_job(program: str) -> Job:
        return Job(program=program, mode="evalplus", limits=LIMITS, test=spec, entry_point="find_zero",
                   helpers=FIND_ZERO_REFERENCE)

    with SandboxPool(workers=1, preload=()) as pool:
        wrong, passing = (pool.run_one(evalplus_job(p)) for p in (
            PATCH_SHARED_MODULES + "def find_zero(xs):\n    return 12345.0\n", right))
    assert (wrong.passed, wrong.tiers) == (False, {"base": False, "plus": False}), wrong
    assert "got 12345.0" in wrong.reason, wrong.reason
    assert (passing.passed, passing.tiers) == (True, {"base": True, "plus": True}), passing


def test_evalplus_tiers_are_data_and_reasons_never_hold_the_expected_output():
    """HumanEval+-style: the tests' process computes the reference's outputs and decides each tier; the
    reason (which passes through the server) says what the program returned, never what was expected."""
    spec = json.dumps({"base": [[2], [5]], "plus": [[1234567]], "atol": 0})
    reference = "def double(x):\n    return 2 * x\n"

    def evalplus_job(program: str) -> Job:
        return Job(program=program, mode="evalplus", limits=LIMITS, test=spec, entry_point="double", helpers=reference)

    with SandboxPool(workers=1, preload=()) as pool:
        right, base_only, wrong = (pool.run_one(evalplus_job(p)) for p in (
            reference, "def double(x):\n    return 2 * x if x < 100 else 0\n", "def double(x):\n    return x + 2\n"))
    assert (right.passed, right.tiers) == (True, {"base": True, "plus": True}), right
    assert (base_only.passed, base_only.tiers) == (False, {"base": True, "plus": False}), base_only
    assert (wrong.passed, wrong.tiers) == (False, {"base": False, "plus": False}), wrong
    assert "got 0" in base_only.reason and "2469134" not in base_only.reason, base_only.reason
    assert "got 7" in wrong.reason and "10" not in wrong.reason, wrong.reason


def test_a_recursive_reference_computes_its_outputs_with_itself_not_the_program():
    """The reference calls itself by its name, which the program's function shares: its outputs (kept for the
    problem's later samples) must come from its own recursion, never from the program's answers, or a program
    returning 0 passes and every later right program fails."""
    spec = json.dumps({"base": [[5]], "plus": [[7]], "atol": 0})
    reference = "def fib(n):\n    return n if n < 2 else fib(n - 1) + fib(n - 2)\n"

    def evalplus_job(program: str) -> Job:
        return Job(program=program, mode="evalplus", limits=LIMITS, test=spec, entry_point="fib", helpers=reference)

    with SandboxPool(workers=1, preload=()) as pool:
        zero, right = (pool.run_one(evalplus_job(p)) for p in ("def fib(n):\n    return 0\n", reference))
    assert (zero.passed, zero.tiers) == (False, {"base": False, "plus": False}), zero
    assert (right.passed, right.tiers) == (True, {"base": True, "plus": True}), right


def test_a_reported_array_cannot_make_the_harness_allocate_without_bound():
    """The report is at most 1 MiB, but a dtype names its own item size: decoding a claimed 400 MB string
    array (or a huge scalar) in the harness is refused, and a small real array still decodes."""
    from sandbox.inside.wire.codec import decode_value

    with pytest.raises(ValueError):
        decode_value({"ndarray": ["<U100000000", [1], ["a"]]})
    with pytest.raises(ValueError):
        decode_value({"ndarray": ["<f8", [100_000, 100_000], []]})
    with pytest.raises(ValueError):
        decode_value({"numpy": ["<U100000000", "a"]})
    assert decode_value({"ndarray": ["<i8", [2], [1, 2]]}).tolist() == [1, 2]


# Every knob a process of the same uid may turn in another (prlimit, setpriority, sched_setscheduler),
# turned on every other process it can see: the server (whose state every later program inherits at
# fork) and the tests' process (kept between jobs).
SLOW_DOWN_EVERYONE = RIGHT_PROGRAM + (
    "import os, resource\n"
    "for pid in range(1, 1000):  # by number: /proc need not list them\n    if pid == os.getpid():\n        continue\n"
    "    p = pid\n"
    "    for change in (lambda: os.sched_setscheduler(p, os.SCHED_IDLE, os.sched_param(0)),\n"
    "                   lambda: os.setpriority(os.PRIO_PROCESS, p, 19),\n"
    "                   lambda: resource.prlimit(p, resource.RLIMIT_STACK, (65536, 65536)),\n"
    "                   lambda: resource.prlimit(p, resource.RLIMIT_DATA, (50 << 20, 50 << 20))):\n"
    "        try:\n            change()\n        except OSError:\n            pass\n")
# What a process's own state looks like, as the program's process and the tests' process see it.
STATE = ("(os.sched_getscheduler(0), os.getpriority(os.PRIO_PROCESS, 0), resource.getrlimit(resource.RLIMIT_STACK), "
         "resource.getrlimit(resource.RLIMIT_DATA))")


def test_a_program_cannot_slow_or_limit_later_programs():
    """A program of the same uid may make the server idle-scheduled, niced, or give it a 64 KiB stack and
    50 MB of data: every later program on that worker would inherit it at fork (a right solution that
    recurses or allocates would then fail). The server replaces itself instead; the tests' process too."""
    require_pid_namespace()
    reporting = RIGHT_PROGRAM + "import os, resource\nprint(repr(%s))\n" % STATE
    test = ("import os, resource\ndef check(candidate):\n    assert candidate(2) == 4\n"
            "    raise AssertionError(repr(%s))\n" % STATE)

    def report() -> Job:
        return Job(program=reporting, mode="assert", limits=LIMITS, test=test, entry_point="double")

    with SandboxPool(workers=1, preload=()) as pool:
        before = pool.run_one(report())
        attack = pool.run_one(_assert_job(SLOW_DOWN_EVERYONE))
        after = pool.run_one(report())
    assert attack.passed, attack
    own = f"(0, {os.getpriority(os.PRIO_PROCESS, 0)}, "  # what the programs inherit (pytest run under `nice`)
    assert own in before.stdout and f"AssertionError: {own}" in before.reason, before
    assert (after.stdout, after.reason) == (before.stdout, before.reason), (before, after)


STREAM_TRICKS = ("replay the first call's reply for every later call", "answer a batch's calls in reverse order",
                 "extra replies and an early end mark after every reply",
                 "replace the sandbox package's deciding modules in its own process")


def test_humanevalplus_inputs_sent_ahead_cannot_be_desynchronised():
    """HumanEval+'s inputs go out in batches too: the same tricks on its stream fail a wrong solution, and
    a right one that leaves the stream alone still passes both tiers."""
    spec = json.dumps({"base": [[2], [-3]], "plus": [[10], [1234567]], "atol": 0})

    def evalplus_job(program: str) -> Job:
        return Job(program=program, mode="evalplus", limits=LIMITS, test=spec, entry_point="double",
                   helpers=RIGHT_PROGRAM)

    jobs = [(name, evalplus_job(ASSERT_TRICKS[name][0].replace("{e}", WRONG))) for name in STREAM_TRICKS]
    with SandboxPool(workers=1, preload=()) as pool:
        verdicts = dict(pool.run_many(jobs + [("right", evalplus_job(RIGHT_PROGRAM))]))
    assert [name for name in STREAM_TRICKS if verdicts[name].passed or any(verdicts[name].tiers.values())] == []
    assert (verdicts["right"].passed, verdicts["right"].tiers) == (True, {"base": True, "plus": True})
