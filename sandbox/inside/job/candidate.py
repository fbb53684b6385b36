"""The program's process of an assert-style or data-driven job: it runs the program, then answers calls.

In: the job's program (never its tests) and its end of the channel. Out, on the channel: whether the
program ran (or how it failed), then one reply per request of the tests: a function's return value as
plain data (and the final state of the mutable arguments it was given), its exception's type and
message, or a handle to an object of one of the program's classes. Nothing it sends is trusted.
"""

import os
import sys

from sandbox.inside.wire.codec import MUTABLE, Unencodable, decode_value, encode_value
from sandbox.inside.wire.exception_identity import lineage
from sandbox.inside.wire.reasons import describe, failing_turn


def run_candidate(job, link):
    """The program's process: run the program as the original harness does (``exec`` in an empty
    namespace, so ``__name__`` is not ``"__main__"``), say whether it ran, then answer calls."""
    program = job["program"]
    line_starts = job.get("turn_line_starts") or []
    me = os.getpid()
    try:
        code = compile(program, "<program>", "exec")
    except (SyntaxError, ValueError) as exc:
        link.send({"status": "syntax_error", "error": describe(exc),
                   "turn": failing_turn(exc, line_starts) if isinstance(exc, SyntaxError) else None})
        return
    namespace = {"__name__": "__main__"} if job.get("module_name") == "__main__" else {}
    try:
        exec(code, namespace)
    except BaseException as exc:  # SystemExit and KeyboardInterrupt too: the tests never ran
        if os.getpid() == me:
            flush_output()
            link.send({"status": "error", "error": describe(exc), "turn": failing_turn(exc, line_starts)})
        return
    if os.getpid() != me:  # a process the program forked runs on past its fork
        os._exit(0)
    flush_output()  # the process is killed once the tests have reported: what it printed goes out now
    link.send({"ready": True})
    classes = set(v for v in namespace.values() if isinstance(v, type))
    handles = []
    while True:
        request = link.recv()
        if request is None:
            return
        for one in request["batch"] if type(request.get("batch")) is list else (request,):
            try:
                answer = _answer(namespace, classes, handles, one)
            except Exception as exc:  # a value odd enough to break the encoder: a failure, not a dead process
                answer = {"unencodable": "the program's process could not answer a call: %s" % describe(exc)}
            flush_output()
            link.send(answer)
            if "value" not in answer and "handle" not in answer:
                break  # the tests stop at a call that did not return: the rest of the batch is never asked
        if "batch" in request:
            link.send({"done": True})


def flush_output():
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:
            pass


def _answer(namespace, classes, handles, request):
    """One request of the tests: call a function of the program, or a method of an object of one of its
    classes (kept here, known to the tests by number), or read or set such an object's attribute."""
    try:
        on = request.get("on")
        name = request.get("call") or request.get("get") or request.get("set")
        if "set" in request:
            setattr(handles[on], name, decode_value(request["value"], 0, handles))
            return {"value": None}
        if on is None:
            function = namespace[name]
        else:
            function = getattr(handles[on], name)
        if "get" in request:
            if callable(function):
                return {"method": True}
            return _result(function, classes, handles)
        args = [decode_value(a, 0, handles) for a in request["args"]]
        kwargs = dict((k, decode_value(v, 0, handles)) for k, v in request["kwargs"].items())
    except KeyError:
        return _raised(NameError("name %r is not defined" % request.get("call")))
    except Unencodable as exc:
        return {"unencodable": "has an attribute that is %s, which cannot cross to the tests" % exc}
    except Exception as exc:
        return _raised(exc)
    try:
        result = function(*args, **kwargs)
    except Exception as exc:
        return _raised(exc)
    except BaseException as exc:
        return {"fatal": describe(exc)}
    reply = _result(result, classes, handles)
    if "value" in reply:
        try:
            reply["args"] = [encode_value(a) if type(a) in MUTABLE else None for a in args]
        except Unencodable:
            pass
    return reply


def _raised(exc):
    """An exception as the tests rebuild it: its class's name, its message, and its lineage (the real
    identity of each class of its MRO, ``sandbox.inside.wire.exception_identity``)."""
    return {"raised": [type(exc).__name__, describe(exc).split(": ", 1)[1], lineage(exc)]}


def _result(value, classes, handles):
    """Plain data; else, for an object of one of the program's own classes that does not define equality
    (a ``MinStack``, a tree ``Node``), a handle the tests can call methods on and pass back."""
    try:
        return {"value": encode_value(value)}
    except Unencodable as exc:
        kind = type(value)
        if kind in classes and not any("__eq__" in vars(k) for k in kind.__mro__[:-1]):
            handles.append(value)
            return {"handle": len(handles) - 1}
        return {"unencodable": "returned %s, which cannot cross to the tests (only plain data does)" % exc}
