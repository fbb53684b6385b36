"""Which calls of the program's function the tests will make, known before they run.

In: a HumanEval-style test module (its source), or HumanEval+'s inputs, in the tests' process. Out: the
calls that ``check(candidate)`` makes in its leading straight-line asserts, or that HumanEval+'s checks
make (every base input, then every plus input, until one fails), in order, as ``(args, kwargs)``. The
proxies send them ahead in batches (``sandbox.inside.job.proxies``), so the program's process answers them one after
the other instead of waiting for each call in turn (two context switches a call).

Only calls that ``check`` makes whatever the program returns, as long as each assert passes, are planned:
an assert whose test calls the candidate exactly once with literal arguments, where nothing decides
whether the call happens (no ``and``, ``or``, ``if``, comprehension, lambda or chained comparison) and
nothing else is called but a few builtins the module does not rebind. The plan stops at the first
statement that is anything else. A failing assert ends ``check``, so the calls made are always a prefix
of the plan; the proxies still check each call against it and fall back to one call at a time if not.
"""

SAFE_CALLS = frozenset(("abs", "round", "len", "set", "sorted", "list", "tuple", "str", "int", "float", "bool",
                        "type", "isinstance", "sum", "max", "min", "all", "any", "repr"))
_CACHE = {}
_CACHE_ENTRIES = 4096


def planned_calls(test_source):
    """``[(args, kwargs), ...]`` for ``check``'s parameter, or ``[]``; cached per source (the tests'
    process sees the same problem's tests again and again)."""
    plan = _CACHE.get(test_source)
    if plan is None:
        import ast  # here, in the tests' process only: the server, which programs fork from, never imports it

        if len(_CACHE) >= _CACHE_ENTRIES:
            _CACHE.clear()
        try:
            plan = _CACHE[test_source] = _plan(ast.parse(test_source))
        except (SyntaxError, ValueError):
            plan = _CACHE[test_source] = []
    return plan


def _plan(tree):
    import ast


    bound = set()
    checks = []
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            bound.add(node.name)
            if node.name == "check":
                checks.append(node)
        elif isinstance(node, ast.Name) and not isinstance(node.ctx, ast.Load):
            bound.add(node.id)
        elif isinstance(node, ast.alias):
            bound.add((node.asname or node.name).split(".")[0])
    if bound & SAFE_CALLS or len(checks) != 1 or not _plain_signature(checks[0]):
        return []
    name = checks[0].args.args[0].arg
    calls = []
    for statement in checks[0].body:
        if isinstance(statement, (ast.Import, ast.ImportFrom)):
            continue
        call = _straight_assert(statement, name) if isinstance(statement, ast.Assert) else None
        if call is None:
            break
        calls.extend(call)
    return calls


def _plain_signature(check):
    arguments = check.args
    return (not check.decorator_list and len(arguments.args) == 1 and not arguments.posonlyargs
            and not arguments.vararg and not arguments.kwonlyargs and not arguments.kwarg
            and not arguments.defaults)


def _straight_assert(statement, name):
    """``[(args, kwargs)]`` for the assert's one call of ``name``, ``[]`` for an assert without one (``assert
    True``), None for an assert that does not qualify."""
    import ast

    conditional = (ast.BoolOp, ast.IfExp, ast.Lambda, ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp,
                   ast.NamedExpr, ast.Await, ast.Yield, ast.YieldFrom, ast.Starred)
    nodes = list(ast.walk(statement.test))
    if statement.msg is not None and any(isinstance(n, ast.Call) for n in ast.walk(statement.msg)):
        return None
    if any(isinstance(n, conditional) or (isinstance(n, ast.Compare) and len(n.ops) > 1) for n in nodes):
        return None
    if any(isinstance(n, ast.Attribute) or (isinstance(n, ast.Name) and n.id != name and n.id not in SAFE_CALLS)
           for n in nodes):
        return None
    calls = [n for n in nodes if isinstance(n, ast.Call)]
    mine = [c for c in calls if isinstance(c.func, ast.Name) and c.func.id == name]
    if len(mine) > 1 or any(not isinstance(c.func, ast.Name) for c in calls):
        return None
    if not mine:
        return []
    try:
        args = tuple(ast.literal_eval(a) for a in mine[0].args)
        kwargs = dict((k.arg, ast.literal_eval(k.value)) for k in mine[0].keywords if k.arg is not None)
    except ValueError:
        return None
    if len(kwargs) != len(mine[0].keywords):
        return None
    return [(args, kwargs)]


def planned_inputs(trusted):
    """HumanEval+: the candidate is called on each base input, then each plus input, until one fails
    (``sandbox.inside.job.evalplus``)."""
    calls = []
    for tier in ("base", "plus"):
        for inputs in trusted.get(tier) or ():
            if type(inputs) is not list:
                return calls
            calls.append((tuple(inputs), {}))
    return calls
