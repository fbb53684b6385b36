"""The tests of an assert-style or data-driven job, run in the tests' process against the program's.

In: the job's trusted part (tests, the problem's helpers, or HumanEval+'s inputs and reference) and the
channel to the program's process. Out: one report: passed or failed, why, and for HumanEval+ the verdict of
each tier. Only this process decides, and only after the tests have finished.
"""

from sandbox.inside.job.evalplus import evalplus_tiers
from sandbox.inside.job.plan import planned_calls, planned_inputs
from sandbox.inside.job.proxies import Fatal, Proxy, TestSide
from sandbox.inside.wire.reasons import describe, short


def run_tests(job, trusted, link, report, memo):
    """The tests' process: the problem's helpers and tests, with the program's functions bound to proxies.
    Only this process decides, and only after the tests have finished. ``memo`` is kept while the same
    problem's jobs follow one another (the reference's outputs on HumanEval+'s inputs)."""
    side = TestSide(link)
    namespace = {}
    try:
        exec(compiled(trusted.get("helpers") or "", "<helpers>"), namespace)
    except BaseException as exc:
        report({"passed": False, "status": "sandbox_error",
                "reason": "the problem's helpers do not run: " + describe(exc)})
        return
    reference = namespace.get(trusted.get("entry_point") or "")
    if trusted.get("entry_point"):
        # The first calls go out now, before the program has run: it reads them once it has (its "ready"
        # and the first replies then come in one go).
        side.expect(trusted["entry_point"], planned_inputs(trusted) if job["mode"] == "evalplus"
                    else planned_calls(trusted["test"]))
        try:
            side.send_ahead()
        except Fatal:  # the program's process is gone: the first call says so, in the tests' own terms
            pass
    first = link.recv()
    if first is None:
        report({"passed": False, "candidate_gone": True})
        return
    if not first.get("ready"):  # the program did not run: say how, in words it cannot turn into a pass
        report({"passed": False, "status": "syntax_error" if first.get("status") == "syntax_error" else "error",
                "reason": str(first.get("error"))[:400],
                "turn": first.get("turn") if type(first.get("turn")) is int else None})
        return
    # evalplus: the reference's globals are the helpers' namespace, where a recursive reference finds its own
    # name: the program's proxy goes into a copy, so the reference's outputs never come from the program.
    bound = dict(namespace) if job["mode"] == "evalplus" else namespace
    entry_point = _bind_proxies(trusted, bound, side)
    tiers, check = None, {}
    try:
        if job["mode"] == "evalplus":
            tiers = []  # filled tier by tier: one decided before the program ended keeps its verdict
            evalplus_tiers(trusted, reference, bound[entry_point], memo, tiers)
            failure = next((reason for _, ok, reason in tiers if not ok), None)
        else:
            exec(compiled(trusted["test"] + "\n", "<tests>"), namespace)
            if entry_point:  # HumanEval style: the tests define check(candidate)
                namespace["check"](namespace[entry_point])
            failure = None
    except BaseException as exc:
        failure = describe(exc) or "AssertionError"
        check = _failed_check(exc, side)
    report(_verdict(side, failure, check, tiers))


def _verdict(side, failure, check, tiers):
    """The report once the tests have finished: the program's process gone or stopped (``side.fatal``)
    decides over the tests' own outcome; ``check`` says where a failure happened; HumanEval+'s tiers ride along."""
    if side.fatal is not None:
        reason, gone = side.fatal
        message = {"passed": False, "status": "failed", "reason": reason, "candidate_gone": gone}
    else:
        message = {"passed": failure is None, "status": "passed" if failure is None else "failed",
                   "reason": failure or ""}
        if failure is not None:
            message.update(check)
    if tiers is not None:  # a tier finished before the program ended (its time limit, say) keeps its verdict
        message["tiers"] = dict([("base", False), ("plus", False)] + [(name, ok) for name, ok, _ in tiers])
    return message


def _bind_proxies(trusted, namespace, side):
    """The program's functions the tests use, entry point included, as proxies in ``namespace``; returns the
    entry point's name ("" where there is none)."""
    names = list(trusted.get("names") or ())
    entry_point = trusted.get("entry_point") or ""
    if entry_point and entry_point not in names:
        names.append(entry_point)
    for name in names:
        namespace[name] = Proxy(name, side.call)
    return entry_point


def _failed_check(exc, side):
    """Where the tests failed, as numbers and the program's own values only: the line of the tests' code
    (the innermost frame of it) and what the program returned on the latest calls, each with the line that
    called. The words, which quote the hidden tests' line, are the harness's (``sandbox.failed_check``):
    nothing of the tests passes through the server, which later programs are forked from."""
    line, tb = None, exc.__traceback__
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == "<tests>":
            line = tb.tb_lineno
        tb = tb.tb_next
    if line is None:
        return {}
    import reprlib  # a failure's cost only: bounded reprs, so a huge returned list costs no more than a small one

    bounded = reprlib.Repr()
    bounded.maxlevel, bounded.maxstring, bounded.maxother = 4, 80, 80
    bounded.maxlist = bounded.maxtuple = bounded.maxset = bounded.maxfrozenset = bounded.maxdict = 10
    return {"test_line": line, "returned": [[at, short(value, 100, bounded.repr)] for at, value in side.returned]}


_COMPILED = {}
_COMPILED_ENTRIES = 4096


def compiled(source, filename):
    """The code of trusted source, compiled once per source in this process (the same problem's tests come
    back job after job; a code object is never changed by running it)."""
    key = (source, filename)
    code = _COMPILED.get(key)
    if code is None:
        if len(_COMPILED) >= _COMPILED_ENTRIES:
            _COMPILED.clear()
        code = _COMPILED[key] = compile(source, filename, "exec")
    return code
