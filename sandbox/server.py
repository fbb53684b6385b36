"""Execution server that runs *inside* the isolation (stdlib only, any Python 3.8+).

The harness starts one server per worker and sends it jobs on stdin. The server itself never runs
untrusted code. The decision is never made in a process the program runs in (``sandbox.scorers`` has the
table of scorers):

* Printed-value jobs (``strict``, ``mtpb``): the server forks one child, puts it in its own session,
  working directory and resource limits, runs the program and sends back what it printed, converted and
  encoded as plain data (``encode_value``). The expected value never reaches this process; the harness
  compares.
* Assert-style and data-driven jobs: the tests run in the worker's tests' process (forked from the
  server before any job, kept between jobs, replaced when anything may have touched it), which reads each
  job's trusted part (tests, helpers, inputs) straight from the protocol pipe, so this server never holds
  it; the program runs in a child forked per job, which answers the tests' calls with plain data over a
  pair of pipes and can reach nothing else.

A program that exits early (``os._exit(0)``, ``sys.exit``, closing stdout, killing itself) has not
answered and fails. When the server is PID 1 of a PID namespace (bubblewrap ``--as-pid-1``), every
process left after a job but the tests' process, double-forked daemons included, is killed; otherwise it
makes itself a child subreaper and kills what reparents to it.

This file is sent to the interpreter as bytecode, so it must not import anything from the project (the
harness imports it for the codec and the comparisons). It also imports as little as it can: every page
the server has mapped is copied into each child's page table at fork and torn down at its exit, which is
most of an execution's cost. Modules that only some jobs need (``ast``) are imported on the first such
job, and error paths import theirs when they happen.
"""

import gc
import io
import json
import os
import resource
import select
import signal
import stat
import sys
import time

MIB = 1024 * 1024
DECODED_ARRAY_BYTES = 64 * MIB  # the largest array a reported value may decode into
EXIT_GRACE_SECONDS = 0.2


def _pidfd_open(pid):
    """A descriptor that becomes readable when ``pid`` exits (Linux 5.3+), or None."""
    try:
        return os.pidfd_open(pid)
    except (AttributeError, OSError):
        return None


# --------------------------------------------------------------------------------------------
# Code that runs in the forked child: the test harness around the untrusted program.
# --------------------------------------------------------------------------------------------

def mtpb_compile(code):
    """MTPB's rewrite: if the program does not end with a ``print(...)`` call, wrap the last
    statement's value in ``print``. Same (quirky) behaviour as the original scorer, including
    ``x = y`` becoming ``x = print(y)`` and statements without ``.value`` left as they are. The
    rewritten tree is compiled directly so that line numbers still point into the program."""
    import ast  # imported by the server before the fork (see Server.run): a dictionary lookup here

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


def _short(value, limit=200):
    try:
        text = repr(value)
    except Exception as exc:  # a program's object whose __repr__ raises
        text = "<unrepresentable: %s>" % type(exc).__name__
    return text if len(text) <= limit else text[:limit] + "..."


def _failing_line(exc):
    """The program's line that raised: a syntax error's, else the module-level statement's (the outermost
    frame of the program; the line of the turn that ran it, even when the error is in an earlier turn's
    function)."""
    if isinstance(exc, SyntaxError):
        return exc.lineno if type(exc.lineno) is int else None
    tb = exc.__traceback__
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == "<program>":
            return tb.tb_lineno
        tb = tb.tb_next
    return None


def _failing_turn(exc, line_starts):
    """Turn whose module-level statement raised: the first turn after which the program stopped running."""
    lineno = _failing_line(exc)
    if lineno is None or not line_starts:
        return None
    turn = 0
    for index, start in enumerate(line_starts):
        if lineno >= start:
            turn = index
    return turn


def _describe(exc):
    try:
        message = str(exc)[:300]
    except Exception:  # a program's exception whose __str__ raises
        message = "<unprintable>"
    return "%s: %s" % (type(exc).__name__, message)


class _ProgramTimeout(Exception):
    pass


# --------------------------------------------------------------------------------------------
# Plain data: the only thing that crosses from the program's process to the side that decides.
# The encoder runs next to the program (which may have replaced anything in its process), so nothing
# it produces is trusted: the decoder accepts only the forms below and never runs code of the program.
# --------------------------------------------------------------------------------------------

class Unencodable(Exception):
    """A value that is not plain data (e.g. an object with its own ``__eq__``)."""


_BIG_INT = 1 << 63
_MAX_ITEMS = 10000000
_ITERATORS = ("generator", "map", "filter", "zip", "enumerate", "reversed", "list_iterator", "tuple_iterator",
              "range_iterator", "str_iterator", "dict_keyiterator", "dict_valueiterator", "dict_itemiterator",
              "set_iterator")


def _base_value(value, base):
    """The plain value under an instance of a subclass of a plain type, read through the base type's own
    slots, so that the subclass's overrides (``__eq__``, ``__iter__``, ``__str__``...) are never used."""
    if base is int:
        return int.__int__(value)
    if base is float:
        return float.__float__(value)
    if base is str:
        return str.__str__(value)
    if base is bytes:
        return bytes(memoryview(value))
    if base is complex:
        return complex(complex.real.__get__(value), complex.imag.__get__(value))
    if base is dict:
        return dict(list(dict.items(value)))
    return base(list(base.__iter__(value)))


def encode_value(value, exact=False, depth=0):
    """``value`` as JSON-able plain data. ``exact``: subclasses of plain types are refused (the strict
    scorer compares types); otherwise they are encoded as their base type's value."""
    if depth > 200:
        raise Unencodable("a value nested more than 200 levels deep")
    kind = type(value)
    if value is None or kind is bool or kind is str:
        return value
    if kind is int:
        return value if -_BIG_INT <= value < _BIG_INT else {"int": hex(value)}
    if kind is float:
        return value if value - value == 0.0 else {"float": repr(value)}  # nan and infinities tagged
    depth += 1
    if kind is list:
        return [encode_value(item, exact, depth) for item in value]
    if kind is tuple or kind is set or kind is frozenset:
        return {kind.__name__: [encode_value(item, exact, depth) for item in value]}
    if kind is dict:
        return {"dict": [[encode_value(k, exact, depth), encode_value(v, exact, depth)] for k, v in value.items()]}
    if kind is bytes:
        return {"bytes": value.hex()}
    if kind is complex:
        return {"complex": [encode_value(value.real), encode_value(value.imag)]}
    numpy = sys.modules.get("numpy")
    if numpy is not None:
        if isinstance(value, numpy.ndarray):
            array = numpy.asarray(value)  # an ndarray subclass is read as a plain array
            if array.dtype.kind not in "biufcUSO":
                raise Unencodable("a numpy array of dtype %s" % array.dtype)
            return {"ndarray": [array.dtype.str, list(array.shape),
                                encode_value(numpy.ndarray.tolist(array), exact, depth)]}
        if isinstance(value, numpy.generic):
            if value.dtype.kind not in "biufcUS":
                raise Unencodable("a numpy value of dtype %s" % value.dtype)
            return {"numpy": [value.dtype.str, encode_value(numpy.generic.item(value), exact, depth)]}
    pandas = sys.modules.get("pandas")
    if pandas is not None and isinstance(value, pandas.Series):
        return {"series": [encode_value(value.to_numpy(), exact, depth), encode_value(list(value.index), exact, depth),
                           encode_value(value.name, exact, depth)]}
    if kind is range:
        return {"range": [value.start, value.stop, value.step]}
    if kind is _Handle:  # the tests pass back an object the program made
        return {"handle": object.__getattribute__(value, "_number")}
    if kind.__name__ in _ITERATORS and kind.__module__ == "builtins":
        items = []
        for item in value:
            items.append(encode_value(item, exact, depth))
            if len(items) > _MAX_ITEMS:
                raise Unencodable("an iterator of more than %d items" % _MAX_ITEMS)
        return {"iterator": items}
    if not exact:
        for base in (int, float, str, bytes, complex, list, tuple, dict, set, frozenset):
            if isinstance(value, base):
                return encode_value(_base_value(value, base), exact, depth)
    raise Unencodable("a value of type %s.%s" % (kind.__module__, kind.__qualname__))


def decode_value(data, depth=0, handles=None):
    """The value ``encode_value`` encoded; ``ValueError`` for anything else. ``handles``: in the program's
    process, the objects the tests hold handles to (``{"handle": n}``)."""
    if depth > 210:
        raise ValueError("nested too deeply")
    kind = type(data)
    if data is None or kind is bool or kind is int or kind is float or kind is str:
        return data
    depth += 1
    if kind is list:
        return [decode_value(item, depth, handles) for item in data]
    if kind is not dict or len(data) != 1:
        raise ValueError("not an encoded value")
    (tag, body), = data.items()
    if tag == "int" and type(body) is str:
        return int(body, 16)
    if tag == "float" and body in ("nan", "inf", "-inf"):
        return float(body)
    if tag == "handle" and handles is not None and type(body) is int and 0 <= body < len(handles):
        return handles[body]
    if tag == "bytes" and type(body) is str:
        return bytes.fromhex(body)
    if type(body) is not list:
        raise ValueError("not an encoded value")
    if tag == "tuple":
        return tuple(decode_value(item, depth, handles) for item in body)
    if tag == "set":
        return set(decode_value(item, depth, handles) for item in body)
    if tag == "frozenset":
        return frozenset(decode_value(item, depth, handles) for item in body)
    if tag == "dict":
        return dict((decode_value(k, depth, handles), decode_value(v, depth, handles)) for k, v in body)
    if tag == "complex" and len(body) == 2:
        return complex(decode_value(body[0], depth, handles), decode_value(body[1], depth, handles))
    if tag == "range" and len(body) == 3 and all(type(x) is int for x in body):
        return range(*body)
    if tag == "iterator":
        return iter([decode_value(item, depth, handles) for item in body])
    if tag in ("ndarray", "numpy", "series"):
        import numpy

        if tag == "ndarray" and len(body) == 3 and type(body[0]) is str and type(body[1]) is list:
            dtype = numpy.dtype(body[0])
            shape = [int(n) for n in body[1]]
            count = 1
            for n in shape:
                count *= max(n, 0)
            # The report is at most 1 MiB, but a dtype names its own item size ("<U100000000"): bound the
            # array the harness would build, whatever the program claims.
            if dtype.kind not in "biufcUSO" or dtype.itemsize * count > DECODED_ARRAY_BYTES:
                raise ValueError("dtype")
            return numpy.array(decode_value(body[2], depth, handles), dtype=dtype).reshape(shape)
        if tag == "numpy" and len(body) == 2 and type(body[0]) is str:
            dtype = numpy.dtype(body[0])
            if dtype.kind not in "biufcUS" or dtype.itemsize > DECODED_ARRAY_BYTES:
                raise ValueError("dtype")
            return dtype.type(decode_value(body[1], depth, handles))
        if tag == "series" and len(body) == 3:
            import pandas

            return pandas.Series(decode_value(body[0], depth, handles), index=decode_value(body[1], depth, handles),
                                 name=decode_value(body[2], depth, handles))
    raise ValueError("not an encoded value")


# --------------------------------------------------------------------------------------------
# Printed-value scorers (strict, mtpb): one process runs the program and reports only what it printed.
# The expected value never reaches this file; only its type's name does (MTPB's coercion needs it).
# --------------------------------------------------------------------------------------------

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
        report({"status": "syntax_error", "error": _describe(exc),
                "turn": _failing_turn(exc, line_starts) if isinstance(exc, SyntaxError) else None,
                "line": _failing_line(exc) if isinstance(exc, SyntaxError) else None})
        return
    print_stack = []
    import builtins

    real_print = builtins.print

    def recording_print(*args, **kwargs):
        print_stack.append(args)
        return real_print(*args, **kwargs)

    namespace = {"__name__": "__main__", "print": recording_print}
    error = None
    if scorer == "mtpb":
        try:
            code = mtpb_compile(program)
        except Exception:
            pass
        # The original swallows any exception (and its own 20 s timeout) and still compares what
        # was printed before it; a program that prints then crashes can pass.
        timeout = job.get("program_timeout")

        def on_alarm(signum, frame):
            raise _ProgramTimeout("Timed out!")

        if timeout:
            signal.signal(signal.SIGALRM, on_alarm)
            signal.setitimer(signal.ITIMER_REAL, timeout)
        try:
            exec(code, namespace)
        except Exception as exc:
            error = exc
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
    else:
        try:
            exec(code, namespace)
        except BaseException as exc:
            report({"status": "error", "error": _describe(exc), "turn": _failing_turn(exc, line_starts),
                    "line": _failing_line(exc)})
            return
    message = {"status": "error" if error else None, "error": _describe(error) if error else None,
               "turn": _failing_turn(error, line_starts) if error else None,
               "line": _failing_line(error) if error else None}
    if not print_stack or not print_stack[-1]:
        report(message)
        return
    got = print_stack[-1][0]
    message["shown"] = _short(got)
    try:
        if scorer == "mtpb":
            got, message["series"] = mtpb_convert(got, EXPECTED_TYPES.get(job.get("expected_type"), str))
        message["value"] = encode_value(got, exact=scorer != "mtpb")
    except Unencodable as exc:
        message["unencodable"] = str(exc)
    except Exception as exc:
        message["conversion_error"] = _describe(exc)
    report(message)


# --------------------------------------------------------------------------------------------
# Assert-style and data-driven scorers: the tests and the program run in two processes. The tests'
# process holds the test code, the problem's trusted helpers and the result pipe; the program's process
# holds the program only and answers calls with plain data over a pair of pipes.
# --------------------------------------------------------------------------------------------

MAX_FRAME = 256 * MIB


class _Link:
    """Length-prefixed JSON frames over a pair of pipes. It keeps its own references to the JSON functions,
    taken before the program runs, so a program that patches the ``json`` module for its own ends still
    answers the tests."""

    def __init__(self, read_fd, write_fd, control=None, sequence=None):
        self.read_fd = read_fd
        self.write_fd = write_fd
        self._dumps = json.dumps
        self._loads = json.loads
        # The tests' side also watches the server's control pipe: {"gone": sequence} there says the
        # program's process has exited, so no answer will come.
        self._control = control
        self._sequence = sequence

    def send(self, message):
        data = self._dumps(message).encode()
        data = len(data).to_bytes(4, "big") + data
        while data:
            data = data[os.write(self.write_fd, data):]

    def recv(self):
        """The next message, or None at the end of the stream (or on a malformed frame)."""
        head = self._read(4)
        if head is None:
            return None
        size = int.from_bytes(head, "big")
        if size > MAX_FRAME:
            return None
        body = self._read(size)
        if body is None:
            return None
        try:
            return self._loads(body)
        except ValueError:
            return None


    def _read(self, size):
        if self._control is None:
            return _read_exactly(self.read_fd, size)
        chunks, remaining = [], size
        watched = [self.read_fd, self._control.read_fd]
        while remaining:
            ready = select.select(watched, [], [])[0]
            if self.read_fd not in ready:  # what the program wrote before it ended comes first
                notice = self._control.recv()
                if notice is None or notice.get("gone") == self._sequence:
                    return None
                continue
            try:
                chunk = os.read(self.read_fd, min(remaining, 1 << 20))
            except OSError:
                return None
            if not chunk:
                return None
            chunks.append(chunk)
            remaining -= len(chunk)
        return b"".join(chunks)


def _read_exactly(fd, size):
    chunks, remaining = [], size
    while remaining:
        try:
            chunk = os.read(fd, min(remaining, 1 << 20))
        except OSError:
            return None
        if not chunk:
            return None
        chunks.append(chunk)
        remaining -= len(chunk)
    return b"".join(chunks)


_MUTABLE = (list, dict, set)


def run_candidate(job, link):
    """The program's process: run the program as the original harness does (``exec`` in an empty
    namespace, so ``__name__`` is not ``"__main__"``), say whether it ran, then answer calls."""
    program = job["program"]
    line_starts = job.get("turn_line_starts") or []
    me = os.getpid()
    try:
        code = compile(program, "<program>", "exec")
    except (SyntaxError, ValueError) as exc:
        link.send({"status": "syntax_error", "error": _describe(exc),
                   "turn": _failing_turn(exc, line_starts) if isinstance(exc, SyntaxError) else None})
        return
    namespace = {"__name__": "__main__"} if job.get("module_name") == "__main__" else {}
    try:
        exec(code, namespace)
    except BaseException as exc:  # SystemExit and KeyboardInterrupt too: the tests never ran
        if os.getpid() == me:
            _flush_output()
            link.send({"status": "error", "error": _describe(exc), "turn": _failing_turn(exc, line_starts)})
        return
    if os.getpid() != me:  # a process the program forked runs on past its fork
        os._exit(0)
    _flush_output()  # the process is killed once the tests have reported: what it printed goes out now
    link.send({"ready": True})
    classes = set(v for v in namespace.values() if isinstance(v, type))
    handles = []
    while True:
        request = link.recv()
        if request is None:
            return
        answer = _answer(namespace, classes, handles, request)
        _flush_output()
        link.send(answer)


def _flush_output():
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
        return {"raised": ["NameError", "name %r is not defined" % request.get("call")]}
    except Unencodable as exc:
        return {"unencodable": "has an attribute that is %s, which cannot cross to the tests" % exc}
    except Exception as exc:
        return {"raised": [type(exc).__name__, _describe(exc).split(": ", 1)[1]]}
    try:
        result = function(*args, **kwargs)
    except Exception as exc:
        return {"raised": [type(exc).__name__, _describe(exc).split(": ", 1)[1]]}
    except BaseException as exc:
        return {"fatal": _describe(exc)}
    reply = _result(result, classes, handles)
    if "value" in reply:
        try:
            reply["args"] = [encode_value(a) if type(a) in _MUTABLE else None for a in args]
        except Unencodable:
            pass
    return reply


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


class _Fatal(BaseException):
    """Ends the tests whatever they catch: the program's process is gone, or a value cannot cross."""


class CandidateError(Exception):
    """An exception the program raised whose type is not a builtin one."""


class _Proxy:
    """What the tests call instead of the program's function: arguments go to the program's process as
    plain data; its return value (or its exception's type and message) comes back."""

    def __init__(self, name, caller):
        self.__name__ = name
        self._caller = caller

    def __call__(self, *args, **kwargs):
        return self._caller(self.__name__, args, kwargs)

    def __repr__(self):
        return "<candidate %s>" % self.__name__


class _TestSide:
    def __init__(self, link):
        self.link = link
        self.fatal = None

    def fail(self, reason, gone=False):
        if self.fatal is None:
            self.fatal = (reason, gone)
        raise _Fatal(reason)

    def call(self, name, args, kwargs, on=None):
        try:
            request = {"call": name, "args": [encode_value(a) for a in args],
                       "kwargs": dict((str(k), encode_value(v)) for k, v in kwargs.items())}
        except Unencodable as exc:
            self.fail("the tests pass %s to the candidate, which cannot cross to its process" % exc)
        if on is not None:
            request["on"] = on
        reply = self._exchange(request)
        try:
            if "handle" in reply and type(reply["handle"]) is int:
                return _Handle(reply["handle"], self)
            if "value" in reply:
                value = decode_value(reply["value"])
                for sent, final in zip(args, reply.get("args") or ()):
                    if final is not None and type(sent) in _MUTABLE:
                        _update_in_place(sent, decode_value(final))
                return value
            if "raised" in reply:
                name, message = str(reply["raised"][0]), str(reply["raised"][1])
            elif "unencodable" in reply:
                self.fail(str(reply["unencodable"]))
            else:
                self.fail("the program ended during a call: %s" % str(reply.get("fatal"))[:300])
        except (ValueError, TypeError, KeyError, IndexError, AttributeError):
            self.fail("the program's process sent a malformed reply")
        raise _rebuilt_exception(name, message)

    def get(self, on, name):
        """An attribute of an object the program made: a method (called through the program's process),
        another such object, or plain data."""
        reply = self._exchange({"get": name, "on": on})
        if reply.get("method") is True:
            return lambda *args, **kwargs: self.call(name, args, kwargs, on)
        if "handle" in reply and type(reply["handle"]) is int:
            return _Handle(reply["handle"], self)
        if "raised" in reply:
            raise _rebuilt_exception(str(reply["raised"][0]), str(reply["raised"][1]))
        if "value" not in reply:
            self.fail(str(reply.get("unencodable") or "the program's process sent a malformed reply"))
        try:
            return decode_value(reply["value"])
        except (ValueError, TypeError, KeyError):
            self.fail("the program's process sent a malformed reply")

    def set(self, on, name, value):
        try:
            request = {"set": name, "on": on, "value": encode_value(value)}
        except Unencodable as exc:
            self.fail("the tests set an attribute to %s, which cannot cross to the program's process" % exc)
        reply = self._exchange(request)
        if "raised" in reply:
            raise _rebuilt_exception(str(reply["raised"][0]), str(reply["raised"][1]))

    def _exchange(self, request):
        if self.fatal is not None:
            raise _Fatal(self.fatal[0])
        try:
            self.link.send(request)
        except OSError:
            self.fail("the program's process ended before the tests finished", gone=True)
        reply = self.link.recv()
        if type(reply) is not dict:
            self.fail("the program's process ended before the tests finished", gone=True)
        return reply


class _Handle:
    """The tests' view of an object the program's class made: methods and attributes go through the
    program's process; comparing or hashing the handle itself is by identity (the program's ``__eq__``
    never runs here)."""

    def __init__(self, number, side):
        object.__setattr__(self, "_number", number)
        object.__setattr__(self, "_side", side)

    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        return self._side.get(self._number, name)

    def __setattr__(self, name, value):
        self._side.set(self._number, name, value)

    def __repr__(self):
        return "<object %d of the program>" % self._number


def _update_in_place(sent, final):
    """The program's changes to a list, dict or set argument, made to the tests' object."""
    if type(final) is not type(sent):
        return
    if type(sent) is list:
        sent[:] = final
    else:
        sent.clear()
        sent.update(final)


def _rebuilt_exception(name, message):
    import builtins

    cls = getattr(builtins, name, None)
    if isinstance(cls, type) and issubclass(cls, Exception) and cls.__module__ == "builtins":
        try:
            return cls(message)
        except Exception:
            pass
    return CandidateError("%s: %s" % (name, message))


def run_tests(job, trusted, link, report, memo):
    """The tests' process: the problem's helpers and tests, with the program's functions bound to proxies.
    Only this process decides, and only after the tests have finished. ``memo`` is kept while the same
    problem's jobs follow one another (the reference's outputs on HumanEval+'s inputs)."""
    side = _TestSide(link)
    namespace = {}
    try:
        exec(compile(trusted.get("helpers") or "", "<helpers>", "exec"), namespace)
    except BaseException as exc:
        report({"passed": False, "status": "sandbox_error", "reason": "the problem's helpers do not run: " + _describe(exc)})
        return
    reference = namespace.get(trusted.get("entry_point") or "")
    first = link.recv()
    if first is None:
        report({"passed": False, "candidate_gone": True})
        return
    if not first.get("ready"):  # the program did not run: say how, in words it cannot turn into a pass
        report({"passed": False, "status": "syntax_error" if first.get("status") == "syntax_error" else "error",
                "reason": str(first.get("error"))[:400],
                "turn": first.get("turn") if type(first.get("turn")) is int else None})
        return
    names = list(trusted.get("names") or ())
    entry_point = trusted.get("entry_point") or ""
    if entry_point and entry_point not in names:
        names.append(entry_point)
    for name in names:
        namespace[name] = _Proxy(name, side.call)
    tiers = None
    try:
        if job["mode"] == "evalplus":
            tiers = []  # filled tier by tier: one decided before the program ended keeps its verdict
            evalplus_tiers(trusted, reference, namespace[entry_point], memo, tiers)
            failure = next((reason for _, ok, reason in tiers if not ok), None)
        else:
            exec(compile(trusted["test"] + "\n", "<tests>", "exec"), namespace)
            if entry_point:  # HumanEval style: the tests define check(candidate)
                namespace["check"](namespace[entry_point])
            failure = None
    except BaseException as exc:
        failure = _describe(exc) or "AssertionError"
    if side.fatal is not None:
        reason, gone = side.fatal
        message = {"passed": False, "status": "failed", "reason": reason, "candidate_gone": gone}
    else:
        message = {"passed": failure is None, "status": "passed" if failure is None else "failed",
                   "reason": failure or ""}
    if tiers is not None:  # a tier finished before the program ended (its time limit, say) keeps its verdict
        message["tiers"] = dict([("base", False), ("plus", False)] + [(name, ok) for name, ok, _ in tiers])
    report(message)


def _is_floats(x):
    """evalplus's ``is_floats``."""
    if isinstance(x, float):
        return True
    if isinstance(x, (list, tuple)) and x:
        return all(isinstance(i, float) for i in x)
    np = sys.modules.get("numpy")
    if np is not None and isinstance(x, np.ndarray):
        return x.dtype == np.float64 or x.dtype == np.float32
    return False


def _poly(xs, x):
    import math

    return sum([coeff * math.pow(x, i) for i, coeff in enumerate(xs)])


def _allclose(out, exp, atol):
    try:
        import numpy
    except ImportError:
        flat_out = out if isinstance(out, (list, tuple)) else [out]
        flat_exp = exp if isinstance(exp, (list, tuple)) else [exp]
        return len(flat_out) == len(flat_exp) and all(abs(a - b) <= atol + 1e-07 * abs(b)
                                                      for a, b in zip(flat_out, flat_exp))
    return bool(numpy.allclose(out, exp, rtol=1e-07, atol=atol))


def evalplus_tiers(trusted, reference, candidate, memo, results):
    """evalplus's ``unsafe_execute`` decisions, per tier (base, then plus), against the reference's outputs
    computed here: exact equality, else ``np.allclose`` within ``atol`` (1e-6 for floats when the release
    gives 0), and HumanEval/32's ``|poly(xs, x)| <= atol``. Appends ``(tier, passed, reason)`` to ``results``
    as each tier is decided (a call that ends the program, at its time limit say, leaves the later tiers
    out: the caller counts them failed, and a tier already decided keeps its verdict, as in evalplus,
    where each tier runs in its own process)."""
    import copy

    find_zero = trusted.get("entry_point") == "find_zero"
    for tier in ("base", "plus"):  # evalplus checks each tier on its own, from the release's atol
        atol = float(trusted.get("atol") or 0)
        reason = ""
        outputs = memo.setdefault(tier, [])  # computed once per problem, as evalplus does
        for index, inp in enumerate(trusted[tier]):
            if index == len(outputs):
                outputs.append(reference(*copy.deepcopy(inp)))
            expected = outputs[index]
            try:
                out = candidate(*copy.deepcopy(inp))
                if find_zero:
                    ok = abs(_poly(*inp, out)) <= atol
                else:
                    exact = out == expected
                    if atol == 0 and _is_floats(expected):
                        atol = 1e-6
                    if not exact and atol != 0:
                        ok = (type(out) == type(expected)
                              and (not isinstance(expected, (list, tuple)) or len(out) == len(expected))
                              and _allclose(out, expected, atol))
                    else:
                        ok = bool(exact)
            except Exception as exc:
                ok, reason = False, "%s input %.200r raised %s" % (tier, inp, _describe(exc))
            if not ok:  # never the expected output: the reason passes through the server's memory
                reason = reason or "%s input %.200r: got %s, not the reference's output" % (tier, inp, _short(out, 100))
                break
        results.append((tier, not reason, reason))
        if reason:
            break
    if len(results) == 1:  # the plus tier is the base inputs and the extra ones
        results.append(("plus", False, results[0][2]))


# --------------------------------------------------------------------------------------------
# The server: fork, limit, collect, clean up.
# --------------------------------------------------------------------------------------------

SIGNAL_REASONS = {
    signal.SIGXCPU: ("timeout", "CPU time limit exceeded"),
    signal.SIGXFSZ: ("killed", "file size limit exceeded"),
    signal.SIGSEGV: ("killed", "crashed with SIGSEGV"),
    signal.SIGABRT: ("killed", "aborted (SIGABRT)"),
    signal.SIGBUS: ("killed", "crashed with SIGBUS"),
    signal.SIGKILL: ("killed", "killed by SIGKILL"),
}


def rlimits(limits):
    """The ``(resource, soft, hard)`` triples for a job's limits, worked out in the server so that the
    child only has to set them."""
    memory = int(limits["memory_mb"]) * MIB
    cpu = max(1, int(limits["cpu_seconds"] + 0.999))
    settings = [
        (resource.RLIMIT_AS, memory),
        (resource.RLIMIT_CPU, cpu),
        (resource.RLIMIT_FSIZE, int(limits["file_size_mb"]) * MIB),
        (resource.RLIMIT_NOFILE, int(limits["open_files"])),
        (resource.RLIMIT_CORE, 0),
    ]
    if limits.get("processes"):
        settings.append((resource.RLIMIT_NPROC, int(limits["processes"])))
    triples = []
    for which, value in settings:
        soft, hard = resource.getrlimit(which)
        if hard != resource.RLIM_INFINITY:
            value = min(value, hard)
        # CPU: SIGXCPU at the soft limit (reported as a timeout), SIGKILL one second later.
        ceiling = value + 1 if which == resource.RLIMIT_CPU else value
        if hard != resource.RLIM_INFINITY:
            ceiling = min(ceiling, hard)
        triples.append((which, value, ceiling))
    return triples


class Server:
    def __init__(self, settings):
        self.settings = settings
        self.is_pid1 = os.getpid() == 1
        _set_dumpable(0)
        # PID 1 of a namespace gets only the signals it handles: Python's SIGINT handler would let a
        # program end the server with os.kill(1, SIGINT).
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        if not self.is_pid1:
            self._become_subreaper()
        # Keep the protocol pipes on private descriptors; 0/1/2 point at /dev/null between jobs. A child
        # points 1 and 2 at its output pipes and keeps the interpreter's own sys.stdout and sys.stderr,
        # which write to those descriptors and hold nothing: the server never writes to them.
        self.proto_in = os.fdopen(os.dup(0), "rb", buffering=0)
        self.proto_out = os.fdopen(os.dup(1), "wb", buffering=0)
        devnull = os.open(os.devnull, os.O_RDWR)
        for fd in (0, 1, 2):
            os.dup2(devnull, fd)
        os.close(devnull)
        self.work_root = settings.get("work_root") or os.environ.get("TMPDIR") or "/tmp"
        # Read-only mounts in /tmp holding the interpreter (see isolation.server_command): not a job's leftovers.
        self.reserved = frozenset(settings.get("reserved_tmp", ()))
        self._leftover = False
        self._tests = None
        self._sequence = 0
        self._trusted_pending = 0
        self._max_fd = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
        self.workdir = None
        self._workdir_checked = False  # _clean_up has just found (or made) it clean
        self._rlimits = {}
        self._cpu_seconds = 0.0
        for module in settings.get("preload", []):
            try:
                __import__(module)
            except Exception:
                pass
        self._warm_up()

    @staticmethod
    def _warm_up():
        """Set up here, once, what every child would otherwise set up for itself after the fork: the
        compiler's AST classes (built on the first ``compile``, about 2 ms) and the JSON encoder. A child
        inherits them for free."""
        namespace = {}
        exec(compile("def f(x):\n    return x\nassert f(1) == 1\n", "<warm-up>", "exec"), namespace)
        json.dumps({"passed": True, "status": "passed", "reason": "", "turn": None})

    @staticmethod
    def _become_subreaper():
        try:
            import ctypes

            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER
        except Exception:
            pass

    def serve(self):
        """Jobs arrive as a fixed 25-byte head (the sizes of the job and of its trusted part), the job as
        JSON, then the trusted part, which only the tests' process reads (see ``run``)."""
        self._send({"ready": True, "pid1": self.is_pid1, "uid": os.getuid()})
        fd = self.proto_in.fileno()
        while True:
            head = _read_exactly(fd, 25)
            body = _read_exactly(fd, int(head[:12])) if head else None
            if body is None:
                return
            job = json.loads(body)
            self._trusted_pending = int(head[12:24])
            try:
                result = self.run(job)
            except Exception:
                import traceback

                result = {"status": "sandbox_error", "passed": False, "reason": traceback.format_exc()[-500:]}
            result["id"] = job["id"]
            self._send(result)
            if self._trusted_pending:
                os._exit(3)  # the stream is out of step: the pool starts a fresh server
            try:
                self._clean_up()  # after the reply, so the harness's round trip overlaps it; before the next job
            except Exception:
                os._exit(3)  # never run a job in a directory that may not be clean; the pool restarts us

    def _send(self, message):
        self.proto_out.write((json.dumps(message) + "\n").encode())

    def run(self, job):
        limits = job["limits"]
        key = tuple(sorted(limits.items()))
        both = self._rlimits.get(key)
        if both is None:  # the same few limits come back job after job
            # The tests' process may get more CPU than the program's (HumanEval+'s computes the reference's
            # outputs), so that only the program's own time is held to the limit measured for it.
            tests_limits = dict(limits, cpu_seconds=limits.get("tests_cpu_seconds") or limits["cpu_seconds"])
            both = self._rlimits[key] = (rlimits(limits), rlimits(tests_limits))
        resource_limits, tests_resource_limits = both
        printing = job["mode"] == "print_value"
        if printing:
            __import__("ast")  # once, here, rather than in every child that needs it
        workdir = self.workdir if self._workdir_checked else self._fresh_workdir()
        self._workdir_checked = False
        out_r, out_w = os.pipe()
        err_r, err_w = os.pipe()
        start = time.monotonic()
        if printing:
            res_r, res_w = os.pipe()
            gc.freeze()  # objects the child inherits are not touched by its collector: fewer copied pages
            candidate = os.fork()
            if candidate == 0:
                self._printing_child(job, workdir, resource_limits, out_w, err_w, res_w)
            for fd in (out_w, err_w, res_w):
                os.close(fd)
            self._leftover = True
            outcome = self._collect(candidate, out_r, err_r, res_r, limits, start)
        else:
            tests = self._tests_process()
            self._sequence += 1
            tests.start_job(job, self._trusted_pending, self._sequence, tests_resource_limits)
            gc.freeze()
            candidate = os.fork()
            if candidate == 0:
                self._candidate_child(job, workdir, resource_limits, out_w, err_w, tests.to_program_r,
                                      tests.to_tests_w)
            os.close(out_w)
            os.close(err_w)
            self._leftover = True
            outcome = self._collect_calls(tests, candidate, out_r, err_r, limits, start)
            if outcome["acknowledged"]:
                self._trusted_pending = 0
        outcome["duration"] = round(time.monotonic() - start, 6)
        result = self._verdict(outcome, printing)
        result["cpu_seconds"] = round(self._cpu_seconds, 6)
        return result

    def _tests_process(self):
        """The worker's tests' process, started (forked from this server, before any job's trusted part
        exists here) when there is none or the last one ended."""
        if self._tests is None:
            self._tests = _TestsProcess(self)
        return self._tests

    def _collect_calls(self, tests, candidate, out_r, err_r, limits, start):
        """Read the program's output and the tests' report until the report is complete (then the
        program's process is killed and its pipes get a short grace), a limit is hit, or the tests'
        process ends. When the program's process exits first, the tests' process is told, so that a call
        waiting for an answer fails at once."""
        deadline = start + float(limits["wall_seconds"])
        cap = int(limits["output_bytes"])
        buffers = {out_r: bytearray(), err_r: bytearray()}
        report = bytearray()
        poller = select.poll()
        for fd in (out_r, err_r, tests.res_r):
            poller.register(fd, select.POLLIN)
        candidate_pidfd = _pidfd_open(candidate)
        for fd in (candidate_pidfd, tests.pidfd):
            if fd is not None:
                poller.register(fd, select.POLLIN)
        open_pipes = 2
        killed_for = None
        reported_at = None
        tests_ended = False
        while True:
            now = time.monotonic()
            if reported_at is not None and (not open_pipes or now > reported_at + EXIT_GRACE_SECONDS):
                break
            if now >= deadline:
                killed_for = "timeout"
                break
            wait = min(deadline - now, 0.5 if reported_at is None else EXIT_GRACE_SECONDS)
            for fd, _ in poller.poll(wait * 1000):
                if fd == candidate_pidfd:
                    poller.unregister(fd)
                    tests.candidate_gone(self._sequence)
                    continue
                if fd == tests.pidfd:
                    tests_ended = True
                    continue
                chunk = os.read(fd, 65536)
                if fd == tests.res_r:
                    if not chunk:
                        tests_ended = True
                        continue
                    report += chunk
                    if len(report) >= 4 and len(report) >= 4 + int.from_bytes(report[:4], "big"):
                        reported_at = time.monotonic()
                        poller.unregister(fd)
                        self._kill_group(candidate)
                    continue
                if not chunk:
                    poller.unregister(fd)
                    open_pipes -= 1
                    continue
                buffers[fd] += chunk
            if tests_ended and reported_at is None:
                break
            if len(buffers[out_r]) + len(buffers[err_r]) > cap:
                killed_for = "output_limit"
                break
            if len(report) > MAX_FRAME:
                tests_ended = True
                break
        self._kill_group(candidate)
        candidate_status = self._wait(candidate, candidate_pidfd, deadline + 1.0)
        if candidate_pidfd is not None:
            os.close(candidate_pidfd)
        status = 0
        acknowledged = tests.acknowledged()
        if killed_for is not None or reported_at is None:  # the tests' process may be anywhere: a new one
            status = tests.end()
            self._tests = None
        for fd in buffers:
            os.close(fd)
        return {"killed_for": killed_for, "wait_status": status, "candidate_status": candidate_status,
                "stdout": bytes(buffers[out_r]), "stderr": bytes(buffers[err_r]), "acknowledged": acknowledged,
                "result": bytes(report[4:]) if reported_at is not None else b""}

    def _clean_up(self):
        if self._leftover:
            self._kill_leftovers()
            self._leftover = False
            self._fresh_workdir()
            self._workdir_checked = True

    def _fresh_workdir(self):
        """The job directory, empty and private. It is reused while a job leaves it untouched (cheaper
        than a new one per job); otherwise it is removed and made anew, and inside the sandbox, where
        /tmp is this server's own, whatever a program left elsewhere in /tmp goes too."""
        if self.workdir is not None:
            try:
                info = os.lstat(self.workdir)
                clean = (stat.S_ISDIR(info.st_mode) and stat.S_IMODE(info.st_mode) == 0o700
                         and not os.listdir(self.workdir))
                if clean and self.is_pid1:
                    clean = set(os.listdir(self.work_root)) - self.reserved == {os.path.basename(self.workdir)}
            except OSError:
                clean = False
            if clean:
                return self.workdir
            if self.is_pid1:
                for entry in set(os.listdir(self.work_root)) - self.reserved:
                    self._remove(os.path.join(self.work_root, entry))
                if set(os.listdir(self.work_root)) - self.reserved:
                    # Something could not be removed: end this server; the pool starts a fresh one
                    # with an empty /tmp, so nothing reaches the next job.
                    os._exit(3)
            else:
                self._remove(self.workdir)
        while True:
            path = os.path.join(self.work_root, "exec-" + os.urandom(6).hex())
            try:
                os.mkdir(path, 0o700)
            except FileExistsError:
                continue
            self.workdir = path
            # Set here, inherited by every child: cheaper than each child setting them after its fork.
            os.environ["HOME"] = path
            os.environ["TMPDIR"] = path
            return path

    def _printing_child(self, job, workdir, resource_limits, out_w, err_w, res_w):
        """The one process of a printed-value job: it reports what the program printed, nothing more."""
        try:
            self._enter_job(workdir, resource_limits, out_w, err_w, (res_w,))
            result_pipe = io.FileIO(res_w, "w", closefd=True)
            reporter = os.getpid()

            def report(message):
                if os.getpid() != reporter:  # a process the program forked runs on past its fork
                    os._exit(0)
                try:
                    sys.stdout.flush()
                except Exception:
                    pass
                result_pipe.write(json.dumps(message).encode())
                result_pipe.close()

            run_printing_program(job, report)
            self._flush()
        except BaseException:
            os._exit(70)
        os._exit(0)

    def _candidate_child(self, job, workdir, resource_limits, out_w, err_w, read_fd, write_fd):
        """The program's process: its output pipes and its end of the channel are all it has."""
        try:
            os.close(self.proto_in.fileno())  # first of all: the tests' part may still be in the pipe
            self._enter_job(workdir, resource_limits, out_w, err_w, (read_fd, write_fd))
            run_candidate(job, _Link(read_fd, write_fd))
            self._flush()
        except BaseException:
            os._exit(70)
        os._exit(0)

    def _enter_job(self, workdir, resource_limits, out_w, err_w, keep):
        os.setsid()
        _set_dumpable(1)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        os.chdir(workdir)
        os.dup2(out_w, 1)
        os.dup2(err_w, 2)
        _close_all_but(keep, self._max_fd)  # the protocol pipes, the other process's ends: all gone
        for which, soft, hard in resource_limits:
            resource.setrlimit(which, (soft, hard))

    @staticmethod
    def _flush():
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        except Exception:
            pass

    def _collect(self, pid, out_r, err_r, res_r, limits, start):
        """A printed-value job: read the pipes until they close and the program's process has exited, or a
        limit is hit.

        Its exit is watched through a pidfd where the kernel has them, so nothing polls. Once it has
        exited, processes still holding the pipes get a short grace, then are killed: the report belongs
        to it, and leftovers die with the execution anyway.
        """
        deadline = start + float(limits["wall_seconds"])
        cap = int(limits["output_bytes"])
        buffers = {out_r: bytearray(), err_r: bytearray(), res_r: bytearray()}
        poller = select.poll()
        for fd in buffers:
            poller.register(fd, select.POLLIN)
        pidfd = _pidfd_open(pid)
        if pidfd is not None:
            poller.register(pidfd, select.POLLIN)
        open_pipes = len(buffers)
        killed_for = None
        exited_at = None
        while open_pipes:
            now = time.monotonic()
            if exited_at is not None and now > exited_at + EXIT_GRACE_SECONDS:
                break
            if now >= deadline:
                killed_for = "timeout"
                break
            wait = min(deadline - now, 0.5 if exited_at is None else EXIT_GRACE_SECONDS)
            for fd, _ in poller.poll(wait * 1000):
                if fd == pidfd:
                    poller.unregister(pidfd)
                    exited_at = time.monotonic()
                    continue
                chunk = os.read(fd, 65536)
                if not chunk:
                    poller.unregister(fd)
                    open_pipes -= 1
                    continue
                buffers[fd] += chunk
            if len(buffers[out_r]) + len(buffers[err_r]) > cap:
                killed_for = "output_limit"
                break
            if len(buffers[res_r]) > 1 << 20:
                killed_for = "output_limit"
                break
        if killed_for is not None or exited_at is not None:
            self._kill_group(pid)
        status = self._wait(pid, pidfd, deadline + 1.0)
        if pidfd is not None:
            os.close(pidfd)
        for fd in buffers:
            os.close(fd)
        return {"killed_for": killed_for, "wait_status": status, "stdout": bytes(buffers[out_r]),
                "stderr": bytes(buffers[err_r]), "result": bytes(buffers[res_r])}

    @staticmethod
    def _kill_group(pid):
        for target in (lambda: os.killpg(pid, signal.SIGKILL), lambda: os.kill(pid, signal.SIGKILL)):
            try:
                target()
            except OSError:
                pass

    def _wait(self, pid, pidfd, deadline):
        """The program's process's wait status; its CPU time (user and system, what its limit counts) is
        kept in ``_cpu_seconds`` for the reply (time limits are measured from the reference's)."""
        while True:
            done, status, usage = os.wait4(pid, os.WNOHANG)
            if done:
                self._cpu_seconds = usage.ru_utime + usage.ru_stime
                return status
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                self._kill_group(pid)
                _, status, usage = os.wait4(pid, 0)
                self._cpu_seconds = usage.ru_utime + usage.ru_stime
                return status
            if pidfd is not None:
                select.select([pidfd], [], [], remaining)
            else:
                time.sleep(0.001)

    def _kill_leftovers(self):
        """Kill everything the job left behind, setsid daemons included, and reap it; only the tests'
        process stays. Then empty the channel's pipes, so that nothing a job wrote reaches the next."""
        keep = self._tests.pid if self._tests is not None else None
        for _ in range(100):
            others = [pid for pid in self._processes() if pid != keep]
            for pid in others:
                try:
                    os.kill(pid, signal.SIGKILL)
                except OSError:
                    pass
            try:
                while True:
                    pid = os.waitpid(-1, os.WNOHANG)[0]
                    if not pid:
                        break
                    if pid == keep:  # killed during the job: a new one for the next
                        self._tests.closed()
                        self._tests = keep = None
            except ChildProcessError:
                pass
            if not others:
                break
            time.sleep(0.001)
        if self._tests is not None:
            if self._tests.tampered():
                self._tests.end()
                self._tests = None
            else:
                self._tests.drain()

    def _processes(self):
        """Processes to consider: in a PID namespace of our own, all but this one; else our children
        (what a program double-forks reparents to us, the subreaper)."""
        if not self.is_pid1:
            return self._children()
        return [int(entry) for entry in os.listdir("/proc") if entry.isdigit() and entry != "1"]

    @staticmethod
    def _children():
        me = str(os.getpid())
        children = []
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                try:
                    with open("/proc/%s/stat" % entry) as handle:
                        fields = handle.read().rsplit(")", 1)[1].split()
                except OSError:
                    continue
                if fields[1] == me:
                    children.append(int(entry))
        return children

    @staticmethod
    def _remove(path):
        """Remove a file or a tree a program may have made unreadable (modes 0, read-only folders).
        Iterative and silent: whatever stays behind is caught by the check in ``_fresh_workdir``."""
        pending, folders = [path], []
        while pending:
            current = pending.pop()
            try:
                info = os.lstat(current)
            except OSError:
                continue
            if not stat.S_ISDIR(info.st_mode):
                try:
                    os.unlink(current)
                except OSError:
                    pass
                continue
            try:
                os.chmod(current, 0o700)
            except OSError:
                pass
            folders.append(current)
            try:
                pending.extend(os.path.join(current, entry) for entry in os.listdir(current))
            except OSError:
                pass
        for folder in reversed(folders):
            try:
                os.rmdir(folder)
            except OSError:
                pass

    @staticmethod
    def _verdict(outcome, printing):
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
        else:
            if report is not None:  # the program's process ended first: say how
                status = outcome["candidate_status"]
                if type(report.get("tiers")) is dict:  # HumanEval+: base can pass before plus runs out of time
                    result["tiers"] = report["tiers"]
            result.update(_ended(status, "" if printing or report is not None else "the tests' process "))
        return result


class _TestsProcess:
    """The worker's tests' process, kept between jobs (a fork per job would cost as much as the program's
    own). It is forked from the server before any job: it holds the server's code and nothing of any job
    but the one it runs. Per job it reads its trusted part from the protocol pipe, runs the tests against
    the program's process over the channel, and writes one report frame. It is in its own session, not
    dumpable, in ``/`` with no writable directory on ``sys.path``; if it ends or may be in a bad state
    (killed by a program, timed out) the server ends it and forks a new one."""

    def __init__(self, server):
        control_r, self.control_w = os.pipe()
        self.ack_r, ack_w = os.pipe()
        self.res_r, res_w = os.pipe()
        self.to_program_r, to_program_w = os.pipe()
        to_tests_r, self.to_tests_w = os.pipe()
        self.to_tests_r = os.dup(to_tests_r)  # the server's copy, to empty the pipe between jobs
        keep = (server.proto_in.fileno(), control_r, ack_w, res_w, to_program_w, to_tests_r)
        self.pid = os.fork()
        if self.pid == 0:
            try:
                os.setsid()
                _close_all_but(keep, server._max_fd)
                signal.signal(signal.SIGINT, signal.SIG_DFL)
                os.chdir("/")
                root = os.path.abspath(server.work_root)
                sys.path[:] = [p for p in sys.path if p and not os.path.abspath(p).startswith(root)]
                tests_main(keep)
            except BaseException:
                os._exit(70)
            os._exit(0)
        for fd in (control_r, ack_w, res_w, to_program_w, to_tests_r):
            os.close(fd)
        self.pidfd = _pidfd_open(self.pid)
        self.control = _Link(None, self.control_w)
        self.state = self._state()

    def _state(self):
        """What a process of the same uid can change in another: resource limits (prlimit), scheduling."""
        limits = tuple(resource.prlimit(self.pid, which) for which in _LIMITS)
        return limits, os.getpriority(os.PRIO_PROCESS, self.pid), os.sched_getaffinity(self.pid)

    def tampered(self):
        """Whether a finished job's processes changed it (lowered its limits, reniced it): then it is
        replaced, so that one program cannot slow or break the next program's tests. A stop is undone."""
        try:
            os.kill(self.pid, signal.SIGCONT)
            return self._state() != self.state
        except OSError:
            return True

    def start_job(self, job, trusted_size, sequence, resource_limits):
        self.control.send({"job": {"mode": job["mode"]}, "size": trusted_size, "sequence": sequence,
                           "limits": [[which, soft] for which, soft, _ in resource_limits
                                      if which in (resource.RLIMIT_AS, resource.RLIMIT_CPU)]})

    def candidate_gone(self, sequence):
        try:
            self.control.send({"gone": sequence})
        except OSError:
            pass

    def acknowledged(self):
        """Whether the job's trusted part was read (one byte per job on the ack pipe)."""
        if not select.select([self.ack_r], [], [], 0)[0]:
            return False
        return os.read(self.ack_r, 1) == b"k"

    def drain(self):
        """Empty the channel: nothing a finished job's processes wrote may reach the next job."""
        for fd in (self.to_tests_r, self.to_program_r):
            while select.select([fd], [], [], 0)[0]:
                os.read(fd, 1 << 16)

    def end(self):
        """Kill it; its wait status."""
        for kill in (lambda: os.killpg(self.pid, signal.SIGKILL), lambda: os.kill(self.pid, signal.SIGKILL)):
            try:
                kill()
            except OSError:
                pass
        try:
            status = os.waitpid(self.pid, 0)[1]
        except ChildProcessError:
            status = 0
        self.closed()
        return status

    def closed(self):
        for fd in (self.control_w, self.ack_r, self.res_r, self.to_program_r, self.to_tests_w, self.to_tests_r,
                   self.pidfd):
            if fd is not None:
                try:
                    os.close(fd)
                except OSError:
                    pass


_LIMITS = tuple(getattr(resource, name) for name in dir(resource) if name.startswith("RLIMIT_"))


def tests_main(fds):
    """The tests' process's loop: one job at a time, until the server closes the control pipe."""
    proto_in, control_r, ack_w, res_w, to_program_w, to_tests_r = fds
    control = _Link(control_r, None)
    original = dict((which, resource.getrlimit(which)) for which in (resource.RLIMIT_AS, resource.RLIMIT_CPU))
    memo_for, memo = None, {}
    while True:
        message = control.recv()
        if message is None:
            return
        if "job" not in message:  # a program's end announced after its tests had finished
            continue
        trusted = _read_exactly(proto_in, int(message["size"]))
        if trusted is None:
            return
        os.write(ack_w, b"k")
        used = resource.getrusage(resource.RUSAGE_SELF)
        for which, soft in message["limits"]:
            if which == resource.RLIMIT_CPU:
                soft = int(used.ru_utime + used.ru_stime) + int(soft)
            resource.setrlimit(which, (soft, resource.getrlimit(which)[1]))
        link = _Link(to_tests_r, to_program_w, control, message["sequence"])
        reports = []
        if trusted != memo_for:
            memo_for, memo = trusted, {}
        run_tests(message["job"], json.loads(trusted), link, reports.append, memo)
        _Link(None, res_w).send(reports[0])
        del trusted, link, reports
        for which, limits in original.items():  # as the server checks them after every job
            resource.setrlimit(which, limits)


def _ended(status, who):
    """Status and reason for a process that ended without a verdict."""
    if os.WIFSIGNALED(status):
        signum = os.WTERMSIG(status)
        kind, reason = SIGNAL_REASONS.get(signum, ("killed", "killed by signal %d" % signum))
        return {"status": kind, "passed": False, "reason": who + reason, "turn": None}
    return {"status": "exited", "passed": False, "turn": None,
            "reason": "%sexited with code %d before the tests reported a result" % (who, os.WEXITSTATUS(status))}


_PRCTL = []


def _set_dumpable(flag):
    """PR_SET_DUMPABLE, inherited by every fork. Off in the server and the tests' process: a process of
    the same uid can neither ptrace them nor read their /proc/<pid>/mem, environ or fd/. Back on in the
    program's process, whose /proc/self is then its own again."""
    try:
        if not _PRCTL:
            import ctypes

            _PRCTL.append(ctypes.CDLL(None, use_errno=True).prctl)
        _PRCTL[0](4, flag, 0, 0, 0)
    except Exception:
        pass


def _close_all_but(keep, limit):
    low = 3
    for fd in sorted(keep):
        if fd >= low:
            os.closerange(low, fd)
            low = fd + 1
    os.closerange(low, max(low, limit))


def main():
    settings = json.loads(sys.argv[1]) if len(sys.argv) > 1 else {}
    Server(settings).serve()


if __name__ == "__main__":
    main()
