"""The server's reply to the harness for one job, from what was collected while it ran.

In: the outcome of a job (``sandbox.inside.collect``): its output, its report, the limit that killed it, the wait
statuses. Out: the reply as plain data: for a printed-value job, the program's report for the harness to
judge (``sandbox.scorers``); for the others, the tests' process's verdict, or how a process ended without
one.
"""

import json
import os
import signal

SIGNAL_REASONS = {
    signal.SIGXCPU: ("timeout", "CPU time limit exceeded"),
    signal.SIGPROF: ("timeout", "CPU time limit exceeded"),  # the tests' process's timer (``tests_main``)
    signal.SIGXFSZ: ("killed", "file size limit exceeded"),
    signal.SIGSEGV: ("killed", "crashed with SIGSEGV"),
    signal.SIGABRT: ("killed", "aborted (SIGABRT)"),
    signal.SIGBUS: ("killed", "crashed with SIGBUS"),
    signal.SIGKILL: ("killed", "killed by SIGKILL"),
}


def reply(outcome, printing):
    """The reply. A printed-value job's reply carries the program's report (what it printed) for the
    harness to judge; an assert-style job's carries the tests' process's verdict."""
    head = 4096
    result = {
        "stdout": outcome["stdout"][:head].decode("utf-8", "replace"),
        "stderr": outcome["stderr"][-head:].decode("utf-8", "replace"),
        "duration": outcome["duration"],
        "output_bytes": len(outcome["stdout"]) + len(outcome["stderr"]),
    }
    try:
        report = json.loads(outcome["result"].decode()) if outcome["result"] else None
    except ValueError:
        report = None
    if type(report) is not dict:
        report = None
    status = outcome["wait_status"]
    if outcome["killed_for"] == "timeout":
        result.update(status="timeout", passed=False, reason="wall-clock limit exceeded", turn=None)
    elif outcome["killed_for"] == "output_limit":
        result.update(status="output_limit", passed=False, reason="output limit exceeded", turn=None)
    elif report is not None and printing:
        result.update(status="reported", passed=False, reason="", turn=None, report=report)
    elif report is not None and not report.get("candidate_gone"):
        result.update(status=str(report.get("status")), passed=report.get("passed") is True,
                      reason=str(report.get("reason", "")), turn=report.get("turn"))
        if type(report.get("tiers")) is dict:
            result["tiers"] = report["tiers"]
        for key in ("test_line", "returned"):  # where the tests failed: the harness words it
            if key in report:
                result[key] = report[key]
    else:
        if report is not None:  # the program's process ended first: say how
            status = outcome["candidate_status"]
            if type(report.get("tiers")) is dict:  # HumanEval+: base can pass before plus runs out of time
                result["tiers"] = report["tiers"]
        result.update(ended(status, "" if printing or report is not None else "the tests' process "))
    return result


def ended(status, who):
    """Status and reason for a process that ended without a verdict."""
    if os.WIFSIGNALED(status):
        signum = os.WTERMSIG(status)
        kind, reason = SIGNAL_REASONS.get(signum, ("killed", "killed by signal %d" % signum))
        return {"status": kind, "passed": False, "reason": who + reason, "turn": None}
    return {"status": "exited", "passed": False, "turn": None,
            "reason": "%sexited with code %d before the tests reported a result" % (who, os.WEXITSTATUS(status))}
