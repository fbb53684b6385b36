"""Words for a verdict's reason: an exception, a value, the turn a program stopped in.

In: exceptions and values of the program (whose ``__str__`` and ``__repr__`` may raise or lie). Out: short
strings, and the index of the turn whose statement raised. Runs in every process of the sandbox and in
the harness (``sandbox.scorers``); standard library only, like every module the server is made of.
"""


def short(value, limit=200, represent=repr):
    try:
        text = represent(value)
    except Exception as exc:  # a program's object whose __repr__ raises
        text = "<unrepresentable: %s>" % type(exc).__name__
    return text if len(text) <= limit else text[:limit] + "..."


def failing_line(exc):
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


def failing_turn(exc, line_starts):
    """Turn whose module-level statement raised: the first turn after which the program stopped running."""
    lineno = failing_line(exc)
    if lineno is None or not line_starts:
        return None
    turn = 0
    for index, start in enumerate(line_starts):
        if lineno >= start:
            turn = index
    return turn


def describe(exc):
    try:
        message = str(exc)[:300]
    except Exception:  # a program's exception whose __str__ raises
        message = "<unprintable>"
    return "%s: %s" % (type(exc).__name__, message)

