"""Each code prompt's time limit from its reference solution, as evalplus sets them.

evalplus gives every test input ``max(min_time_limit, gt_time_limit_factor x the ground truth's time)`` (1 s
and 4 by default), so a sample that loops costs about a second rather than a fixed minute. Here the
program's process of a code prompt with a reference gets ``max(floor, FACTOR x the reference's CPU
time)`` for the whole job (all of its inputs), where the floor is ``--timeout``; the limit is CPU time
(``RLIMIT_CPU``, whole seconds), which a loaded machine does not stretch, so verdicts do not flip with load,
and the wall limit stays generous (it only catches programs that sleep or block). The tests' process keeps
the problem's own budget: it runs trusted code only (HumanEval+'s computes the reference's outputs).

Problems without a reference (MTPB) and printed-value problems keep ``max(floor, the problem's timeout)``,
MTPB's own 20 s included. The reference's CPU time is measured once, in the sandbox that runs the samples,
and cached under the checksum of the scored problems and the sandbox interpreter, so reruns and ``--resume``
apply the same limits; ``summary.json`` records them (``limits``). This module measures and caches the times;
``harness.execution.problem_limits.TimeLimits`` applies the rule.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import math
import os
from collections.abc import Callable, Sequence
from pathlib import Path

from harness.cache_paths import cache_root
from harness.errors import InputError
from harness.execution.jobs import job_for
from harness.execution.problem_limits import TimeLimits
from harness.generation.conversations import Conversation
from harness.suites.problems import CODE, Problem, problem_content
from sandbox.pool import Limits, SandboxPool

log = logging.getLogger(__name__)

MAX_REFERENCE_SECONDS = 86400.0  # --timeout's own maximum: a cached reference time above it is not plausible


def measurable(problems: Sequence[Problem]) -> list[Problem]:
    """Code prompts with a reference solution: the ones whose limit comes from it."""
    return [p for p in problems if p.kind == CODE and p.reference is not None]


# The problems' reference solutions as conversations (``harness.runs.references``): made by a backend,
# which this stage does not import.
ReferencePrograms = Callable[[Sequence[Problem]], list[Conversation]]


def floor_limits(timeout: float, memory_mb: int) -> Limits:
    """The limits ``--timeout`` and ``--memory-mb`` set for every job, the floor of each problem's."""
    return Limits(wall_seconds=timeout, cpu_seconds=timeout, memory_mb=memory_mb)


def time_limits(pool: SandboxPool, problems: Sequence[Problem], floor: Limits,
                references: ReferencePrograms) -> TimeLimits:
    """``floor`` plus the reference CPU times of ``problems``, from the cache or measured now (running the
    conversations ``references`` makes)."""
    targets = measurable(problems)
    if not targets:
        return TimeLimits(floor)
    path = _cache_path(targets, pool.python)
    times = _read(path) if path is not None else {}
    missing = [p for p in targets if p.id not in times]
    if missing:
        log.info("measuring the reference solutions of %d problem(s) for their time limits", len(missing))
        times.update(_measure(pool, references(missing), floor))
        if path is not None:
            _write(path, times)
    return TimeLimits(floor, {p.id: times[p.id] for p in targets if p.id in times})


def _measure(pool: SandboxPool, conversations: list[Conversation], floor: Limits) -> dict[str, float]:
    """Each reference's CPU time in the sandbox, with the problem's generous limits. A reference that does
    not pass is left out (its problem keeps the generous limit) with a warning."""
    unmeasured = TimeLimits(floor)
    jobs = [(c.unit.problem.id, job_for(c, unmeasured)) for c in conversations]
    times: dict[str, float] = {}
    for problem_id, execution in pool.run_many(jobs):
        if execution.passed and execution.cpu_seconds is not None:
            times[problem_id] = round(execution.cpu_seconds, 4)
        else:
            log.warning("%s: the reference solution did not pass (%s: %s); its samples keep the limit of "
                        "max(--timeout, the problem's timeout)", problem_id, execution.status, execution.reason[:200])
    return times


def _cache_path(problems: Sequence[Problem], python: str) -> Path | None:
    """The measurement's file, named by the checksum of the problems' content and the sandbox interpreter;
    None (measure, do not cache) when there is no usable cache folder."""
    try:
        root = cache_root()
    except InputError as exc:
        log.warning("the references' times are not cached: %s", exc)
        return None
    content = json.dumps({"python": python, "problems": [problem_content(p) for p in problems]}, sort_keys=True,
                         default=repr)
    return root / "reference-times" / (hashlib.sha256(content.encode("utf-8")).hexdigest() + ".json")


def _read(path: Path) -> dict[str, float]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict):
        return {}
    # An entry no measurement gives (negative, NaN, infinite, over a day: a hand edit or a corrupt file)
    # is missing, so it is measured again: 1e300 would make the limit overflow and fail correct programs.
    return {str(k): float(v) for k, v in data.items()
            if type(v) in (int, float) and math.isfinite(v) and 0 <= v <= MAX_REFERENCE_SECONDS}


def _write(path: Path, times: dict[str, float]) -> None:
    """Atomically (a concurrent run reads the old file or the new one, never half of one)."""
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_text(json.dumps(times, sort_keys=True), encoding="utf-8")
        tmp.replace(path)
    except OSError as exc:  # a full or read-only cache costs a measurement next time, never the run
        with contextlib.suppress(OSError):
            tmp.unlink()
        log.warning("the references' times are not cached in %s: %s", path.parent, exc.strerror or exc)
