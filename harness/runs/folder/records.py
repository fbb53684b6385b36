"""What a run writes about each sample (its line in ``samples.jsonl``) and prints at the end (the table)."""

from __future__ import annotations

from typing import Any

from harness.generation.conversations import Conversation
from sandbox.pool import Execution


def sample_record(conversation: Conversation, execution: Execution, seed: int) -> dict[str, Any]:
    unit = conversation.unit
    problem = unit.problem
    record: dict[str, Any] = {
        "task_id": problem.id,
        "case": unit.case,
        "sample": unit.sample,
        "unit": unit.uid,
        "seed": seed,
    }
    if problem.tests:
        record["inputs"] = problem.tests[unit.case].inputs
        record["expected"] = repr(problem.tests[unit.case].expected)
    record.update({
        "turns": [{"prompt": t.prompt, "raw": t.raw, "completion": t.completion,
                   "prompt_tokens": t.prompt_tokens, "new_tokens": t.new_tokens,
                   **({"prompt_tokens_computed": t.prompt_tokens_computed}
                      if t.prompt_tokens_computed is not None else {}),
                   **({"prompt_truncated": True} if t.prompt_truncated else {}),
                   **({"reasoning_tokens": t.reasoning_tokens} if t.reasoning_tokens is not None else {}),
                   **({"reasoning_over_budget": True} if t.reasoning_over_budget else {}),
                   **({"extraction": t.extraction} if t.extraction is not None else {})}
                  for t in conversation.turns],
        "program": conversation.program,
        "passed": execution.passed,
        "status": execution.status,
        "reason": execution.reason,
        "failed_turn": execution.turn,
        "stdout": execution.stdout[:2000],
        "stderr": execution.stderr[-2000:],
        "duration": execution.duration,
        "execution": execution.origin,
        **({"tiers": execution.tiers} if execution.tiers is not None else {}),
    })
    return record


def format_table(summary: dict[str, Any]) -> str:
    ks = summary["ks"]
    header = ["", "problems", *[f"pass@{k}" for k in ks], "pass rate"]
    rows = [["overall", summary["overall"]["problems"], *[summary["overall"][f"pass@{k}"] for k in ks],
             summary["overall"]["pass_rate"]]]
    for name, entry in summary["per_category"].items():
        rows.append([f"  {name}", entry["problems"], *[entry[f"pass@{k}"] for k in ks], entry["pass_rate"]])
    cells = [[str(c) if not isinstance(c, float) else f"{100 * c:.1f}%" for c in row] for row in rows]
    widths = [max(len(str(h)), *(len(r[i]) for r in cells)) for i, h in enumerate(header)]
    lines = ["  ".join(str(h).rjust(w) if i else str(h).ljust(w) for i, (h, w) in enumerate(zip(header, widths)))]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(row, widths))) for row in cells]
    for tier, entry in (summary.get("tiers") or {}).items():
        lines.append(f"{tier}: " + ", ".join(f"pass@{k} {100 * entry[f'pass@{k}']:.1f}%" for k in ks))
    failures = summary.get("failures_by_turn") or {}
    if failures:
        lines.append("failed conversations by where they broke: " +
                     ", ".join(f"{bucket}: {count}" for bucket, count in failures.items()))
    counts = summary["counts"]
    lines.append(f"{counts['passed']}/{counts['executions']} executions passed; statuses {counts['statuses']}")
    reuse = (summary.get("timings") or {}).get("executions")
    if reuse:
        lines.append(f"programs: {reuse['executed']} executed, {reuse['duplicates']} identical to another "
                     f"sample's, {reuse['cache_hits']} verdicts from the cache")
    defects = summary.get("defects") or {}
    if defects:
        lines.append(f"{len(defects)} problem(s) with known data defects: {', '.join(defects)} (see summary.json)")
    return "\n".join(lines)
