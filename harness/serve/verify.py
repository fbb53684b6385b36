"""``/verify``: completions in, the verdicts ``evaluate`` gives out, with pass@k per task.

In: ``{"suite": ..., "data": ..., "samples": [...], "k": [...]}``, each sample as ``evaluate`` reads a line of
its samples file (``{"task_id", "completion"}``, or ``{"task_id", "case", "completions"}`` for multi-turn
suites). Out: one verdict per sample, in order (``task_id``, ``case``, ``sample``, ``passed``, ``status``,
``reason``, ``failed_turn``, ``tiers``, ``execution``: run or cache) and ``pass_at_k`` per task and case for
each k no larger than its number of samples. The programs, jobs, time limits and verdict cache are
``evaluate``'s own, so the verdicts are the same.
"""

from __future__ import annotations

import asyncio
import threading
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import Any

from harness.errors import InputError
from harness.execution.jobs import job_for
from harness.execution.verdict_cache import VerdictCache, job_key
from harness.runs.evaluate import conversations_from_samples
from harness.scoring.passk import pass_at_k
from harness.serve.input_limits import BadRequest, check_program
from harness.serve.settings import InputLimits
from harness.serve.suites import Suites
from sandbox.pool import Execution, Job

RunAsync = Callable[[list[Job]], Awaitable[list[Execution]]]
_CACHE_LOCK = threading.Lock()  # one SQLite connection, used from the loop's helper threads one at a time


def _request_fields(body: dict[str, Any], limits: InputLimits) -> tuple[str, str | None, list[Any], list[int]]:
    suite, data, samples, ks = body.get("suite"), body.get("data"), body.get("samples"), body.get("k", [1])
    if not isinstance(suite, str) or not (data is None or isinstance(data, str)):
        raise BadRequest("fields 'suite' (a name or YAML path) and 'data' (a path, optional) must be strings")
    if not isinstance(samples, list) or not samples or not all(isinstance(s, dict) for s in samples):
        raise BadRequest("field 'samples' must be a non-empty list of objects")
    if len(samples) > limits.samples:
        raise BadRequest(f"field 'samples': {len(samples)} samples, at most {limits.samples} per request", 413)
    if not isinstance(ks, list) or not ks or not all(type(k) is int and k >= 1 for k in ks):
        raise BadRequest("field 'k' must be a non-empty list of integers from 1")
    # pass@k is worked out in the event loop for each k of each task: bounded like the samples (only k <= n counts)
    if len(ks) > limits.samples:
        raise BadRequest(f"field 'k': {len(ks)} values, at most {limits.samples} per request", 413)
    return suite, data, samples, list(dict.fromkeys(ks))


async def verify(body: dict[str, Any], suites: Suites, cache: VerdictCache | None, context: dict[str, Any],
                 limits: InputLimits, run: RunAsync) -> dict[str, Any]:
    name, data, samples, ks = _request_fields(body, limits)
    try:
        suite, timed = await asyncio.to_thread(suites.get, name, data)
        conversations = conversations_from_samples(suite, "request", list(enumerate(samples, 1)))
    except InputError as exc:
        raise BadRequest(exc.one_line().replace("request: line", "sample")) from None
    for index, conversation in enumerate(conversations):
        check_program(conversation.program, f"samples[{index}]", limits)
    jobs = [job_for(c, timed) for c in conversations]
    keys = [job_key(job, context) for job in jobs]
    executions = await _executions(jobs, keys, cache, run)
    verdicts = [_verdict(c.unit, e) for c, e in zip(conversations, executions)]
    return {"suite": suite.name, "verdicts": verdicts, "pass_at_k": _pass_at_k(verdicts, ks)}


async def _executions(jobs: list[Job], keys: list[str], cache: VerdictCache | None, run: RunAsync) -> list[Execution]:
    """Cached verdicts where the cache has them (as ``evaluate`` reads them), the rest run and stored."""
    def lookup() -> list[Execution | None]:
        with _CACHE_LOCK:
            return [cache.get(key) if cache else None for key in keys]

    def store(ran: list[Execution]) -> None:
        with _CACHE_LOCK:
            for i, execution in zip(todo, ran):
                cache.put(keys[i], execution)  # type: ignore[union-attr]

    found = await asyncio.to_thread(lookup)
    results: list[Execution | None] = [replace(e, origin="cache") if e else None for e in found]
    todo = [i for i, e in enumerate(results) if e is None]
    if todo:
        ran = await run([jobs[i] for i in todo])
        for i, execution in zip(todo, ran):
            results[i] = execution
        if cache:
            await asyncio.to_thread(store, ran)
    return [e for e in results if e is not None]


def _verdict(unit: Any, execution: Execution) -> dict[str, Any]:
    return {"task_id": unit.problem.id, "case": unit.case, "sample": unit.sample, "passed": execution.passed,
            "status": execution.status, "reason": execution.reason, "failed_turn": execution.turn,
            "tiers": execution.tiers, "execution": execution.origin}


def _pass_at_k(verdicts: list[dict[str, Any]], ks: list[int]) -> list[dict[str, Any]]:
    samples: Counter = Counter()
    correct: Counter = Counter()
    for v in verdicts:
        samples[(v["task_id"], v["case"])] += 1
        correct[(v["task_id"], v["case"])] += v["passed"]
    return [{"task_id": task, "case": case, "n": n, "correct": correct[(task, case)],
             **{f"pass@{k}": pass_at_k(n, correct[(task, case)], k) for k in ks if k <= n}}
            for (task, case), n in samples.items()]
