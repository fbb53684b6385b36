"""From an execution (or a sample line read back) to the verdict that scoring counts."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from harness.scoring.scores import Verdict
from harness.suites.problems import Problem

if TYPE_CHECKING:  # types only: scoring runs nothing
    from harness.generation.conversations import Conversation
    from sandbox.pool import Execution


def make_verdict(problem: Problem, case: int, sample: int, passed: bool, status: str, turn: int | None,
                 tiers: dict[str, bool] | None = None) -> Verdict:
    base_passed = None
    if problem.tiers:  # HumanEval+: the tests' process decides each tier
        base_passed = passed or bool((tiers or {}).get("base"))
    return Verdict(problem_id=problem.id, category=problem.category, case=case, sample=sample, passed=passed,
                   status=status, turn=turn, base_passed=base_passed)


def verdict_of(conversation: Conversation, execution: Execution) -> Verdict:
    unit = conversation.unit
    return make_verdict(unit.problem, unit.case, unit.sample, execution.passed, execution.status, execution.turn,
                        execution.tiers)


def verdict_from_record(record: dict[str, Any], problem: Problem) -> Verdict:
    """A sample line's verdict (merging a run's parts)."""
    return make_verdict(problem, record["case"], record["sample"], record["passed"], record["status"],
                        record["failed_turn"], record.get("tiers"))
