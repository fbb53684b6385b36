"""The built-in suite verifies itself: references pass, and the tests bite."""

from __future__ import annotations

from dataclasses import replace

import pytest

from harness.backends.reference import ReferenceBackend
from harness.errors import InputError
from harness.execution.executor import Executor
from harness.execution.jobs import execute
from harness.generation.backend import SamplingParams
from harness.generation.conversations import ConversationGenerator, units_for
from harness.suites.problems import CODE, MULTI_TURN, Turn
from harness.suites.registry import resolve_suite
from sandbox.pool import Limits, SandboxPool


def test_core_suite_shape():
    suite = resolve_suite("core")
    multi = [p for p in suite.problems if p.kind == MULTI_TURN]
    code = [p for p in suite.problems if p.kind != MULTI_TURN]
    assert len(multi) >= 30 and len(code) >= 10
    assert all(3 <= len(p.turns) <= 8 and len(p.tests) >= 4 for p in multi)
    categories = {p.category for p in suite.problems}
    assert {"strings", "lists", "dicts", "math", "algorithms", "classes", "data"} <= categories


def _run(problems, prefix):
    generator = ConversationGenerator(ReferenceBackend(), SamplingParams(temperature=0), 0, prefix)
    conversations = generator.run_group(units_for(problems, 1))
    with SandboxPool(workers=2, preload=("numpy", "pandas")) as pool:
        return conversations, execute(conversations, Executor(pool, dedup=False), Limits())


def test_references_pass_and_dropping_the_last_turn_fails():
    suite = resolve_suite("core")
    conversations, executions = _run(suite.problems, suite.program_prefix)
    assert all(e.passed for e in executions), [(c.unit.uid, e.reason) for c, e in zip(conversations, executions)
                                               if not e.passed]
    # Without its last reference turn (multi-turn) or with the body cut to `pass` (code), every problem fails.
    crippled = []
    for problem in suite.problems:
        if problem.kind == MULTI_TURN:
            turns = list(problem.turns[:-1]) + [Turn(prompt=problem.turns[-1].prompt, reference="pass")]
            crippled.append(replace(problem, turns=tuple(turns)))
        else:
            crippled.append(replace(problem, reference="    pass\n"))
    conversations, executions = _run(crippled, suite.program_prefix)
    by_problem: dict[str, list[bool]] = {}
    for conversation, execution in zip(conversations, executions):
        by_problem.setdefault(conversation.unit.problem.id, []).append(execution.passed)
    still_passing = [pid for pid, results in by_problem.items() if all(results)]
    assert still_passing == []


def test_problems_are_selected_by_id_or_pattern():
    """``--problems`` takes ids and shell-style patterns (``core/he-*``: the code-prompt problems), in the
    suite's order; a pattern or id that matches nothing is refused, naming it."""
    suite = resolve_suite("core")
    code = [p.id for p in suite.problems if p.kind == CODE]
    assert [p.id for p in suite.select_problems(["core/he-*"], None)] == code and len(code) == 10
    both = suite.select_problems(["core/vowel-count", "core/he-ro*"], None)
    assert [p.id for p in both] == [p.id for p in suite.problems if p.id in ("core/vowel-count", "core/he-roman")]
    assert [p.id for p in suite.select_problems(["core/he-*"], 2)] == code[:2]
    with pytest.raises(InputError, match="no such problem") as refused:
        suite.select_problems(["core/he-*", "core/nothing-*"], None)
    assert refused.value.problem == "core/nothing-*"
