"""HumanEval+'s checks, as evalplus makes them, in the tests' process.

In: the release's base and plus inputs and ``atol`` (the job's trusted part), the reference program's
function (run here, never in the program's process) and the proxy of the program's. Out: per tier, whether
the program's outputs equal the reference's (exactly, or within ``atol``), and why not.
"""

import sys

from sandbox.inside.wire.reasons import describe, short


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
    # evalplus's np.allclose broadcasts one shape against the other ([[]] against [2.5] is empty, so it
    # passes): here the shapes must be the same (a ragged list has none, and fails, as it raises there).
    try:
        if numpy.shape(out) != numpy.shape(exp):
            return False
    except ValueError:
        return False
    return bool(numpy.allclose(out, exp, rtol=1e-07, atol=atol))


def evalplus_tiers(trusted, reference, candidate, memo, results):
    """evalplus's ``unsafe_execute`` decisions, per tier (base, then plus), against the reference's outputs
    computed here: exact equality, else ``np.allclose`` within ``atol`` on values of the same shape (1e-6 for floats when the release
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
                ok, reason = False, "%s input %.200r raised %s" % (tier, inp, describe(exc))
            if not ok:  # never the expected output: the reason passes through the server's memory
                reason = reason or "%s input %.200r: got %s, not the reference's output" % (tier, inp, short(out, 100))
                break
        results.append((tier, not reason, reason))
        if reason:
            break
    if len(results) == 1:  # the plus tier is the base inputs and the extra ones
        results.append(("plus", False, results[0][2]))
