"""The comparisons of the printed-value scorers, run in the harness process on decoded plain data.

In: the value the program printed, decoded (``sandbox.inside.wire.codec``) and, for ``mtpb``, already coerced
towards the expected type in the program's process (``sandbox.inside.job.printing.mtpb_convert``), and the
expected value.
Out: whether they are equivalent under the scorer's rule (``strict_equivalent``, ``mtpb_equivalent``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

TOLERANCE = 1e-6


def mtpb_equivalent(got: Any, expected: Any, was_series: bool = False) -> bool:
    """The comparison half of the original MTPB ``check_equivalence``: pandas Series with ``np.allclose``,
    bools in string space, floats within 1e-6, the other plain types with ``==``."""
    if was_series:
        import numpy as np  # here, not through sys.modules: another worker thread may be importing it

        # The original's np.allclose broadcasts one shape against the other (an empty Series would pass
        # every numeric problem, [5] an expected [], [3, 3] an expected 3): the shapes must be the same.
        # A Series's values (``to_numpy``) are a one-dimensional array; the report says "Series" on the
        # program's word, so anything else (one number, which np.allclose holds to 1e-5) is no Series.
        if type(got) is not np.ndarray or got.ndim != 1:
            raise ValueError("the program's process reported a Series whose values are not one-dimensional")
        values, wanted = got, np.asarray(expected)
        return values.shape == wanted.shape and bool(np.allclose(values, wanted))
    if type(expected) == bool and type(got) == str:
        expected = str(expected)
    kind = type(got)
    if kind != type(expected):
        raise ValueError("the program's process reported a %s, not the expected type" % kind.__name__)
    if kind in (str, int, set, list, bool, tuple):
        return got == expected
    if kind == float:
        return abs(got - expected) < TOLERANCE
    raise ValueError("Unsupported type %s" % kind)


def strict_equivalent(got: Any, expected: Any, tolerance: float = TOLERANCE) -> bool:
    """Same type and value, all the way down (set elements and dict keys too: ``1.0`` and ``True`` are not
    ``1``); floats, also inside containers and sets, within ``tolerance``."""
    if type(got) != type(expected):
        return False
    if isinstance(got, float):
        return abs(got - expected) <= tolerance
    if isinstance(got, (list, tuple)):
        return len(got) == len(expected) and all(strict_equivalent(a, b, tolerance) for a, b in zip(got, expected))
    if isinstance(got, (set, frozenset)):
        return len(got) == len(expected) and _matched(list(got), list(expected), tolerance, _typed)
    if isinstance(got, dict):
        return len(got) == len(expected) and _matched(list(got.items()), list(expected.items()), tolerance,
                                                      lambda item: _typed(item[0]))
    return got == expected


def _typed(value: Any) -> Any:
    """A key equal for two hashable values exactly when they are equal with the same types all the way down
    (``(int, 1)`` is not ``(bool, True)`` nor ``(float, 1.0)``)."""
    kind = type(value)
    if kind is tuple:
        return kind, tuple(_typed(item) for item in value)
    if kind is frozenset:
        return kind, frozenset(_typed(item) for item in value)
    return kind, value


def _matched(got: list[Any], expected: list[Any], tolerance: float, key: Callable[[Any], Any]) -> bool:
    """Whether the elements (or ``(key, value)`` items) of two sets (dicts) of the same size pair off one to
    one, each pair strictly equivalent. Exact matches pair by their typed key (``key``); what is left
    (values within the tolerance, not equal) is paired by a real matching (``_paired``)."""
    exact = {key(item): item for item in expected}
    left = []
    for item in got:
        twin = exact.get(key(item))
        if twin is not None and strict_equivalent(item, twin, tolerance):
            del exact[key(item)]
        else:
            left.append(item)
    return _paired(left, list(exact.values()), tolerance)


def _paired(got: list[Any], expected: list[Any], tolerance: float) -> bool:
    """A perfect matching of strictly equivalent pairs. Plain floats: sorted order (on a line, pairing in
    sorted order minimises the largest difference, so it finds a matching within the tolerance whenever
    one exists). Anything else (tuples holding floats, whose sorted order a tolerance does not respect):
    augmenting paths (Kuhn), as many as there are elements."""
    if len(got) != len(expected):
        return False
    if all(type(x) is float and x == x for x in got + expected):  # nan is never within any tolerance
        return all(abs(a - b) <= tolerance for a, b in zip(sorted(got), sorted(expected)))
    edges = [[j for j, b in enumerate(expected) if strict_equivalent(a, b, tolerance)] for a in got]
    owner: list[int | None] = [None] * len(expected)  # the element of got each expected one is paired with
    partner: list[int | None] = [None] * len(got)
    return all(_augment(start, edges, owner, partner) for start in range(len(got)))


def _augment(start: int, edges: list[list[int]], owner: list[int | None], partner: list[int | None]) -> bool:
    """One augmenting path from ``start`` (searched without recursion: sets can be large), applied."""
    reached_from: dict[int, int] = {}
    stack = [start]
    while stack:
        i = stack.pop()
        for j in edges[i]:
            if j in reached_from:
                continue
            reached_from[j] = i
            if owner[j] is None:
                while j is not None:  # flip the path back to start
                    i = reached_from[j]
                    owner[j], j, partner[i] = i, partner[i], j
                return True
            stack.append(owner[j])  # type: ignore[arg-type]
    return False
