"""evalplus 0.3.1's HumanEval+ verdicts, restated from its source (``evalplus/eval/__init__.py``:
``is_floats``, ``unsafe_execute``, ``untrusted_check``; ``evalplus/gen/util``: ``trusted_exec``), for the
parity test. The wheel itself pulls in model clients (openai, anthropic, google-generativeai, transformers),
so its evaluation path is restated here instead, independently of the harness code it checks.

Run as a plain script: reads ``[{"problem": record, "programs": [code, ...]}]`` as JSON on stdin, writes
``[[[base_passed, plus_passed], ...], ...]``. As evalplus does, the ground truth's outputs and times come from
the canonical solution (inputs deep-copied), every program runs in a forked process per tier with
``max(1.0, 4.0 x the ground truth's time)`` per input (``setitimer``) and the task timeout
``min(60, sum) + 1``. Only the verdict is kept, so a tier stops at its first failing input (``fast_check``
gives the same pass/fail).
"""

import copy
import json
import math
import os
import select
import signal
import sys
import time

import numpy as np

MIN_TIME_LIMIT, GT_TIME_LIMIT_FACTOR = 1.0, 4.0  # evalplus.config


class TimeoutException(Exception):
    pass


def is_floats(x) -> bool:
    if isinstance(x, float):
        return True
    if isinstance(x, (list, tuple)) and x:
        return all(isinstance(i, float) for i in x)
    if isinstance(x, np.ndarray):
        return x.dtype == np.float64 or x.dtype == np.float32
    return False


def _poly(xs: list, x: float):
    return sum([coeff * math.pow(x, i) for i, coeff in enumerate(xs)])


def trusted_exec(code, inputs, entry_point):
    exec_globals = {}
    exec(code, exec_globals)
    fn = exec_globals[entry_point]
    outputs, times = [], []
    for inp in inputs:
        inp = copy.deepcopy(inp)
        start = time.time()
        outputs.append(fn(*inp))
        times.append(time.time() - start)
    return outputs, times


def _alarm(signum, frame):
    raise TimeoutException("Timed out!")


def unsafe_execute(entry_point, code, inputs, expected, time_limits, atol):
    """True when every input's output matches (``unsafe_execute`` with ``dataset == "humaneval"``)."""
    exec_globals = {}
    exec(code, exec_globals)
    fn = exec_globals[entry_point]
    for i, inp in enumerate(inputs):
        signal.setitimer(signal.ITIMER_REAL, time_limits[i])
        signal.signal(signal.SIGALRM, _alarm)
        try:
            out = fn(*inp)
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
        exp = expected[i]
        exact_match = out == exp
        if "find_zero" == entry_point:
            assert abs(_poly(*inp, out)) <= atol
            continue
        if atol == 0 and is_floats(exp):
            atol = 1e-6
        if not exact_match and atol != 0:
            assert type(out) == type(exp)
            if isinstance(exp, (list, tuple)):
                assert len(out) == len(exp)
            assert np.allclose(out, exp, rtol=1e-07, atol=atol)
        else:
            assert exact_match
    return True


def untrusted_check(entry_point, code, inputs, expected, atol, ref_time) -> bool:
    time_limits = [max(MIN_TIME_LIMIT, GT_TIME_LIMIT_FACTOR * t) for t in ref_time]
    timeout = min(60, sum(time_limits)) + 1
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read_fd)
        os.setsid()
        devnull = os.open(os.devnull, os.O_RDWR)
        for fd in (0, 1, 2):
            os.dup2(devnull, fd)
        try:
            ok = unsafe_execute(entry_point, code, copy.deepcopy(inputs), expected, time_limits, atol)
        except BaseException:
            ok = False
        os.write(write_fd, b"1" if ok else b"0")
        os._exit(0)
    os.close(write_fd)
    if not select.select([read_fd], [], [], timeout + 1)[0]:  # as untrusted_check's join(timeout + 1)
        os.killpg(pid, signal.SIGKILL)
    try:
        os.killpg(pid, signal.SIGKILL)  # whatever it forked
    except OSError:
        pass
    os.waitpid(pid, 0)
    verdict = os.read(read_fd, 1)
    os.close(read_fd)
    return verdict == b"1"


def main():
    verdicts = []
    for item in json.load(sys.stdin):
        problem = item["problem"]
        truth = problem["prompt"] + problem["canonical_solution"]
        tiers = {}
        for tier in ("base", "plus"):
            inputs = problem[tier + "_input"]
            tiers[tier] = (inputs,) + trusted_exec(truth, inputs, problem["entry_point"])
        atol = problem["atol"]
        results = []
        for code in item["programs"]:
            base, plus = (untrusted_check(problem["entry_point"], code, inputs, outputs, atol, times)
                          for inputs, outputs, times in (tiers["base"], tiers["plus"]))
            results.append([base, base and plus])  # evalplus's plus score: both tiers pass
        verdicts.append(results)
    json.dump(verdicts, sys.stdout)


if __name__ == "__main__":
    main()
