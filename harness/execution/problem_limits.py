"""Each problem's limits: ``TimeLimits`` holds the floor (``--timeout``, ``--memory-mb``) and the reference CPU
times measured per problem, and turns them into a job's ``sandbox.pool.Limits`` by the rule that
``harness.execution.time_limits`` describes. Below both the module that measures the times (``time_limits``) and
the one that builds the jobs (``jobs``), which share it."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from harness.suites.problems import Problem
from sandbox.pool import Limits

FACTOR = 4.0  # evalplus's DEFAULT_GT_TIME_LIMIT_FACTOR (its DEFAULT_MIN_TIME_LIMIT, 1 s, is our --timeout)
MARGIN_SECONDS = 5.0


@dataclass(frozen=True)
class TimeLimits:
    """The limits of every problem's jobs: ``floor`` (from ``--timeout`` and ``--memory-mb``) and the
    reference CPU seconds measured per problem id."""

    floor: Limits
    reference_cpu: dict[str, float] = field(default_factory=dict)
    factor: float = FACTOR

    def for_problem(self, problem: Problem) -> Limits:
        generous = max(self.floor.cpu_seconds, problem.timeout)
        measured = self.reference_cpu.get(problem.id)
        # The wall limit catches programs that sleep or block: twice the CPU the job may need plus a margin,
        # so that a loaded machine (more busy workers than cores) never turns a correct program into a timeout.
        if measured is None:
            return replace(self.floor, cpu_seconds=generous,
                           wall_seconds=max(self.floor.wall_seconds, 2 * generous + MARGIN_SECONDS))
        # Whole seconds, as RLIMIT_CPU applies them: what is recorded is what binds, and a measurement that
        # moves by a few milliseconds does not change the limit (nor the verdict cache's key).
        cpu = float(math.ceil(max(self.floor.cpu_seconds, self.factor * measured)))
        # The tests' process runs trusted code only, under the problem's own CPU budget; what it does per
        # job (the reference's outputs, once per problem and worker, and the comparisons) is about what the
        # reference's process did, so the job may need the program's budget twice.
        wall = max(self.floor.wall_seconds, 2 * (2 * cpu) + MARGIN_SECONDS)
        return replace(self.floor, wall_seconds=wall, cpu_seconds=cpu, tests_cpu_seconds=generous)

    def record(self, problems: Sequence[Problem]) -> dict[str, Any]:
        """For ``summary.json``: the rule and each problem's limits."""
        per_problem = {}
        for problem in problems:
            limits = self.for_problem(problem)
            entry: dict[str, Any] = {"cpu_seconds": limits.cpu_seconds, "wall_seconds": limits.wall_seconds}
            if problem.id in self.reference_cpu:
                entry["reference_cpu_seconds"] = self.reference_cpu[problem.id]
                entry["tests_cpu_seconds"] = limits.tests_cpu_seconds
            per_problem[problem.id] = entry
        return {"rule": "code prompts with a reference: the program's CPU limit is max(floor, factor x the "
                        "reference's CPU time), in whole seconds; others: max(floor, the problem's timeout)",
                "floor_seconds": self.floor.cpu_seconds, "factor": self.factor, "problems": per_problem}
