"""The two print-value scorers, run through the real sandbox."""

from __future__ import annotations

import pytest

from sandbox.pool import Job, Limits, SandboxPool

CASES = [
    # program, expected repr, mtpb verdict, strict verdict
    ("print(3)", "3", True, True),
    ("print('3')", "3", True, False),             # mtpb casts to the expected type
    ("print((1, 2))", "[1, 2]", True, False),
    ("print([(1, 2)])", "[[1, 2]]", True, False),  # list of tuples becomes list of lists
    ("import numpy as np\nprint(np.int64(4))", "4", True, False),
    ("import numpy as np\nprint(np.array([1, 2]))", "[1, 2]", True, False),
    ("print(0.1 + 0.2)", "0.3", True, True),
    ("print(1)", "True", False, False),           # bools are compared in string space: '1' != 'True'
    ("x = 5\nx", "5", True, False),                # bare last expression is printed under mtpb only
    ("print([1])\n1 / 0", "[1]", True, False),     # prints then crashes: the original still compares
    ("import pandas as pd\nprint(pd.Series([1, 2]))", "[1, 2]", True, False),
    ("print()", "1", False, False),
]


@pytest.fixture(scope="module")
def verdicts():
    jobs = []
    for index, (program, expected, _, _) in enumerate(CASES):
        for scorer in ("mtpb", "strict"):
            jobs.append(((index, scorer), Job(program=program, mode="print_value", limits=Limits(), expected=expected,
                                              scorer=scorer)))
    with SandboxPool(workers=2, preload=("numpy", "pandas")) as pool:
        return {key: execution for key, execution in pool.run_many(jobs)}


@pytest.mark.parametrize("index", range(len(CASES)))
def test_scorer_verdicts(verdicts, index):
    program, expected, mtpb, strict = CASES[index]
    assert verdicts[(index, "mtpb")].passed is mtpb, verdicts[(index, "mtpb")]
    assert verdicts[(index, "strict")].passed is strict, verdicts[(index, "strict")]
