"""From per-sample verdicts to scores: pass@k per problem, per category and overall, MTPB's pass rate,
and where failed conversations broke (turn-level attribution).

Each (problem, test case) conversation is a task with ``n`` samples; for a multi-turn problem its
pass@k is the mean over its test cases (each test case is its own conversation, as in MTPB). MTPB's
pass rate is the fraction of all (problem, test case, sample) executions that passed.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from harness.scoring.passk import pass_at_k


@dataclass(frozen=True)
class Verdict:
    problem_id: str
    category: str
    case: int
    sample: int
    passed: bool
    status: str
    turn: int | None
    base_passed: bool | None = None  # HumanEval+: passed the base inputs (``passed`` is base and plus)


def failure_bucket(verdict: Verdict) -> str:
    """Where a failed conversation broke: the turn after which the program stopped running, or the test."""
    if verdict.status in ("timeout", "output_limit", "killed", "sandbox_error", "exited"):
        return verdict.status
    if verdict.turn is not None:
        return f"turn {verdict.turn + 1}"
    return verdict.status if verdict.status in ("syntax_error", "error") else "test"


def score(verdicts: list[Verdict], ks: list[int], n: int) -> dict[str, Any]:
    by_task: dict[tuple[str, int], list[Verdict]] = defaultdict(list)
    categories: dict[str, str] = {}
    for v in verdicts:
        by_task[(v.problem_id, v.case)].append(v)
        categories[v.problem_id] = v.category
    per_problem: dict[str, dict[str, Any]] = {}
    for problem_id in dict.fromkeys(v.problem_id for v in verdicts):
        cases = sorted(case for pid, case in by_task if pid == problem_id)
        correct = [sum(v.passed for v in by_task[(problem_id, case)]) for case in cases]
        samples = [len(by_task[(problem_id, case)]) for case in cases]
        entry: dict[str, Any] = {"category": categories[problem_id], "cases": len(cases), "n": samples,
                                 "correct": correct,
                                 "pass_rate": sum(correct) / sum(samples)}
        for k in ks:
            entry[f"pass@{k}"] = sum(pass_at_k(s, c, k) for s, c in zip(samples, correct)) / len(cases)
        per_problem[problem_id] = entry

    def aggregate(problem_ids: list[str]) -> dict[str, Any]:
        chosen = [per_problem[p] for p in problem_ids]
        executions = sum(sum(e["n"]) for e in chosen)
        result: dict[str, Any] = {"problems": len(chosen),
                                  "pass_rate": sum(sum(e["correct"]) for e in chosen) / executions if executions else 0.0}
        for k in ks:
            result[f"pass@{k}"] = sum(e[f"pass@{k}"] for e in chosen) / len(chosen) if chosen else 0.0
        return result

    per_category = {cat: aggregate([p for p in per_problem if per_problem[p]["category"] == cat])
                    for cat in sorted(set(categories.values()))}
    failures = Counter(failure_bucket(v) for v in verdicts if not v.passed)
    statuses = Counter(v.status for v in verdicts)
    overall = aggregate(list(per_problem))
    tiers = {}
    if any(v.base_passed is not None for v in verdicts):
        base = [replace(v, passed=bool(v.base_passed), base_passed=None) for v in verdicts]
        tiers = {"base": score(base, ks, n)["overall"], "plus": overall}
    return {
        "overall": overall,
        **({"tiers": tiers} if tiers else {}),
        "per_category": per_category,
        "per_problem": per_problem,
        "failures_by_turn": dict(sorted(failures.items(), key=lambda item: _bucket_order(item[0]))),
        "counts": {"problems": len(per_problem), "tasks": len(by_task), "executions": len(verdicts),
                   "passed": sum(v.passed for v in verdicts), "statuses": dict(sorted(statuses.items())),
                   "samples_per_task": n},
    }


def _bucket_order(bucket: str) -> tuple[int, int | str]:
    if bucket.startswith("turn "):
        return (0, int(bucket.split()[1]))
    return (1, bucket)


def feedback_scores(verdicts: list[Verdict], records: list[dict[str, Any]], ks: list[int], n: int,
                    max_repairs: int) -> dict[str, Any]:
    """Feedback mode: pass@k after each repair round r = 0..R, beside the budget-matched figures, and what
    the repairs did.

    Budget-matched (Olausson et al., ICLR 2024): plain sampling with the same budget, once counted in model
    calls (``budget_matched``) and once in generated tokens (``tokens_matched``). If by round r a task's
    samples spent ``m`` times what its plain samples (round 0: one call per turn) spent, it is credited with
    plain pass@ceil(k*m) of its round-0 samples (which are plain samples), where ceil(k*m) <= n; otherwise
    the figure is None (n too small to estimate it)."""
    rounds = []
    for r in range(max_repairs + 1):
        at_round = [replace(v, passed=rec["feedback"]["rounds"][r]["passed"],
                            status=rec["feedback"]["rounds"][r]["status"]) for v, rec in zip(verdicts, records)]
        entry: dict[str, Any] = {"round": r, **score(at_round, ks, n)["overall"]}
        entry["budget_matched"] = _budget_matched(verdicts, records, ks, r, _calls, "calls_per_plain_sample")
        entry["tokens_matched"] = _budget_matched(verdicts, records, ks, r, _tokens, "tokens_per_plain_sample")
        rounds.append(entry)
    return {"rounds": rounds, "repairs": repair_counts(records, max_repairs)}


def _calls(record: dict[str, Any], r: int) -> float:
    """Model calls a sample made by round r (at most r repairs per turn)."""
    return record["feedback"]["calls_by_round"][r]


def _tokens(record: dict[str, Any], r: int) -> float:
    """Tokens a sample generated by round r (its attempts of rounds 0..r, reasoning included)."""
    return sum(attempt["new_tokens"] for turn in record["feedback"]["attempts"] for attempt in turn[:r + 1])


def _budget_matched(verdicts: list[Verdict], records: list[dict[str, Any]], ks: list[int], r: int,
                    cost: Callable[[dict[str, Any], int], float], ratio_name: str) -> dict[str, Any]:
    """Plain pass@ceil(k*m) of each task's round-0 samples, m being what its samples spent by round r over
    what they spent at round 0 (``cost``); None where a task's m is unknown (nothing spent at round 0 but
    something later) or ceil(k*m) exceeds its samples."""
    samples: dict[tuple[str, int], list[tuple[bool, float, float]]] = defaultdict(list)
    for verdict, record in zip(verdicts, records):
        samples[(verdict.problem_id, verdict.case)].append((record["feedback"]["rounds"][0]["passed"],
                                                            cost(record, 0), cost(record, r)))
    ratios: dict[tuple[str, int], float | None] = {}
    for task, rows in samples.items():
        plain, spent = sum(p for _, p, _ in rows), sum(s for _, _, s in rows)
        ratios[task] = spent / plain if plain else (1.0 if not spent else None)
    result: dict[str, Any] = {}
    for k in ks:
        per_problem: dict[str, list[float | None]] = defaultdict(list)
        for task, rows in samples.items():
            ratio = ratios[task]
            budget = math.ceil(k * ratio - 1e-9) if ratio is not None else None
            correct = sum(passed for passed, _, _ in rows)
            per_problem[task[0]].append(pass_at_k(len(rows), correct, budget)
                                        if budget is not None and budget <= len(rows) else None)
        estimable = all(None not in values for values in per_problem.values())
        result[f"pass@{k}"] = (sum(sum(v) / len(v) for v in per_problem.values()) / len(per_problem)  # type: ignore[arg-type]
                               if per_problem and estimable else None)
    known = [m for m in ratios.values() if m is not None]
    result[ratio_name] = round(sum(known) / len(known), 4) if known and len(known) == len(ratios) else None
    return result


def repair_counts(records: list[dict[str, Any]], max_repairs: int) -> dict[str, Any]:
    """Repairs made; samples a round turned from failing to passing (``fixed``) and from passing to
    failing (``broke``) on the hidden tests; checks a repair made pass; failed checks by error type."""
    made = fixed = broke = checks_fixed = 0
    errors: Counter = Counter()
    for record in records:
        info = record["feedback"]
        rounds = info["rounds"]
        for r in range(1, max_repairs + 1):
            fixed += not rounds[r - 1]["passed"] and rounds[r]["passed"]
            broke += rounds[r - 1]["passed"] and not rounds[r]["passed"]
        for attempts in info["attempts"]:
            made += len(attempts) - 1
            for previous, attempt in zip(attempts, attempts[1:]):
                checks_fixed += previous["error_type"] is not None and attempt["check"] is not None \
                    and attempt["error_type"] is None
            errors.update(a["error_type"] for a in attempts if a["error_type"])
    return {"made": made, "fixed": fixed, "broke": broke, "checks_fixed": checks_fixed,
            "errors_by_type": dict(sorted(errors.items()))}
