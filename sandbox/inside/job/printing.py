"""Printed-value scorers (``strict``, ``mtpb``): the program of a job, run in the one process of the job.

In: the job (program, scorer, the expected value's type's name, which MTPB's coercion needs; never the
expected value). Out: one report, as plain data, of the first argument of the program's last ``print``,
converted as the original scorer converts it (``mtpb_convert``), or how the program failed. The harness
compares (``sandbox.scorers``).
"""

import signal
import sys

from sandbox.inside.wire.codec import Unencodable, encode_value
from sandbox.inside.wire.reasons import describe, failing_line, failing_turn, short


def mtpb_compile(code):
    """MTPB's rewrite: if the program does not end with a ``print(...)`` call, wrap the last
    statement's value in ``print``. Same (quirky) behaviour as the original scorer, including
    ``x = y`` becoming ``x = print(y)`` and statements without ``.value`` left as they are. The
    rewritten tree is compiled directly so that line numbers still point into the program."""
    import ast  # imported by the zygote before its first fork (cheap_fork.warm_up): a dictionary lookup here

    tree = ast.parse(code)
    try:
        if tree.body[-1].value.func.id.startswith("print"):
            return compile(tree, "<program>", "exec")
    except Exception:
        pass
    try:
        last = tree.body[-1]
        last.value = ast.Call(func=ast.Name(id="print", ctx=ast.Load()), args=[last.value], keywords=[])
        ast.fix_missing_locations(last)
    except Exception:
        tree = ast.parse(code)
    return compile(tree, "<program>", "exec")


def _series_to_array(value):
    type_name = str(type(value))
    if type_name in ("<class 'pandas.core.series.Series'>", "<class 'pandas.Series'>"):
        return value.to_numpy(), True
    return value, False


class _ProgramTimeout(Exception):
    pass


EXPECTED_TYPES = {"int": int, "float": float, "str": str, "bool": bool, "list": list, "tuple": tuple, "set": set,
                  "frozenset": frozenset, "dict": dict, "bytes": bytes, "complex": complex, "NoneType": type(None)}


def mtpb_convert(got, expected_type):
    """The part of the original ``check_equivalence`` that needs the printed object itself: its coercion
    towards the expected value's type. Returns ``(value, was_series)``; the comparison happens outside."""
    np = sys.modules.get("numpy")
    got, was_series = _series_to_array(got)
    if was_series:
        return got, True
    if type(got) == list:
        if len(got) > 0 and type(got[0]) == tuple:
            got = [list(t) for t in got]
    elif np is not None and type(got) in (np.uint8, np.int16, np.int32, np.int64):
        got = int(got)
    elif np is not None and type(got) in (np.float16, np.float32, np.float64):
        got = float(got)
    elif np is not None and type(got) == np.bool_:
        got = bool(got)
    elif np is not None and type(got) == np.ndarray:
        got = got.tolist()
    if type(got) != expected_type:
        got = str(got) if expected_type == bool else expected_type(got)
    return got, False


def run_printing_program(job, report):
    """Runs the program of a printed-value job and reports (as plain data) the first argument of its last
    ``print``, converted as the job's scorer converts it."""
    program = job["program"]
    line_starts = job.get("turn_line_starts") or []
    scorer = job["scorer"]
    try:
        code = compile(program, "<program>", "exec")
    except (SyntaxError, ValueError) as exc:
        report({"status": "syntax_error", "error": describe(exc),
                "turn": failing_turn(exc, line_starts) if isinstance(exc, SyntaxError) else None,
                "line": failing_line(exc) if isinstance(exc, SyntaxError) else None})
        return
    print_stack = []
    import builtins

    real_print = builtins.print

    def recording_print(*args, **kwargs):
        print_stack.append(args)
        return real_print(*args, **kwargs)

    namespace = {"__name__": "__main__", "print": recording_print}
    if scorer == "mtpb":
        error = _run_as_mtpb(program, code, namespace, job.get("program_timeout"))
    else:
        try:
            exec(code, namespace)
        except BaseException as exc:
            report({"status": "error", "error": describe(exc), "turn": failing_turn(exc, line_starts),
                    "line": failing_line(exc)})
            return
        error = None
    message = {"status": "error" if error else None, "error": describe(error) if error else None,
               "turn": failing_turn(error, line_starts) if error else None,
               "line": failing_line(error) if error else None}
    if not print_stack or not print_stack[-1]:
        report(message)
        return
    got = print_stack[-1][0]
    message["shown"] = short(got)
    try:
        if scorer == "mtpb":
            got, message["series"] = mtpb_convert(got, EXPECTED_TYPES.get(job.get("expected_type"), str))
        message["value"] = encode_value(got, exact=scorer != "mtpb")
    except Unencodable as exc:
        message["unencodable"] = str(exc)
    except Exception as exc:
        message["conversion_error"] = describe(exc)
    report(message)


def _run_as_mtpb(program, code, namespace, timeout):
    """The original swallows any exception (and its own 20 s timeout) and still compares what was printed
    before it; a program that prints then crashes can pass. Returns the exception, or None."""
    try:
        code = mtpb_compile(program)
    except Exception:
        pass

    def on_alarm(signum, frame):
        raise _ProgramTimeout("Timed out!")

    if timeout:
        signal.signal(signal.SIGALRM, on_alarm)
        signal.setitimer(signal.ITIMER_REAL, timeout)
    try:
        exec(code, namespace)
    except Exception as exc:
        return exc
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
    return None
