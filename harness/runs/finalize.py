"""The end of a run, shared by ``run`` (rank 0, once every group is present) and ``merge`` (a sharded
run's parts): check that every batch group is present, write ``samples.jsonl`` in canonical order and
``summary.json``, then drop the parts. One function, so a merged run's results are a single run's."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from harness.feedback.checks import settings_for
from harness.config import SHARD_COUNT, RunConfig
from harness.errors import InputError
from harness.execution.executor import ExecutionStats
from harness.generation.conversations import Unit
from harness.suites.problems import Problem, Suite
from harness.runs.folder.run_folder import RunFolder
from harness.runs.folder.summary import summary_of
from harness.scoring.scores import feedback_scores
from harness.scoring.verdicts import verdict_from_record

MAX_LISTED = 20  # missing groups named in the refusal


def merge_results(run_dir: RunFolder, config: RunConfig, suite: Suite, problems: list[Problem],
                  groups: list[list[Unit]], wall_seconds: float | None = None) -> dict[str, Any]:
    """Write the run's results from its parts (every process, shard and attempt), then remove the parts;
    refuses with one line, changing nothing, when a group is missing or a part was written under another
    config. The model, prompt format, sandbox layers and time limits come from the processes' timings files.
    ``wall_seconds``: the run's own clock; else the span from the first process's start to the last's end."""
    members = [{unit.uid for unit in group} for group in groups]
    done = run_dir.merged_groups(members)
    if missing := [g for g in range(len(groups)) if g not in done]:
        raise InputError(_missing(missing, len(groups), (run_dir.recorded_config() or {}).get(SHARD_COUNT)),
                         file=str(run_dir.directory), field="samples")
    records = [record for g in range(len(groups)) for record in sorted(done[g], key=_unit_order(groups[g]))]
    parts = run_dir.process_timings()
    described = next((p for p in parts if all(key in p for key in ("model", "prompt_format", "sandbox"))), None)
    if described is None:
        raise InputError("no process recorded the model, prompt format and sandbox layers (no *.timings.json "
                         "in parts/ with them); nothing was changed", file=str(run_dir.parts), field="timings")
    if wall_seconds is None:
        wall_seconds = max(p.get("ended_at", 0.0) for p in parts) - min(p.get("started_at", 0.0) for p in parts)
    by_id = {p.id: p for p in problems}
    verdicts = [verdict_from_record(r, by_id[r["task_id"]]) for r in records]
    # The config records feedback as in effect (``pipeline._plan``): None is off, not "the suite's".
    repairs = settings_for(config.feedback or "none", config.max_repairs, None, None)
    summary = summary_of(
        suite, problems, verdicts, ks=config.k, n=config.n, seed=config.seed, model=described["model"],
        limits=described.get("limits"),
        timings={**_merged_timings(parts, records), "wall_seconds": round(wall_seconds, 3)},
        sandbox=described["sandbox"], exclude_defective=config.exclude_defective,
        prompt_format=described["prompt_format"],
        config={**config.as_dict(), "shard": None, "merge_when_complete": False},  # the run's, not a shard's
        feedback={**repairs.as_dict(), **feedback_scores(verdicts, records, config.k, config.n, repairs.max_repairs)}
        if repairs.enabled else None)
    kept = ("; the part files are kept, so no sample is lost: free some space, then merge again (`run-benchmark "
            f"merge {run_dir.directory}` for a sharded run, else --resume)")
    run_dir.write_results(records, summary, keep_note=kept)
    return summary


def _missing(missing: list[int], total: int, shard_count: int | None) -> str:
    listed = ", ".join(str(g) for g in missing[:MAX_LISTED]) + (", ..." if len(missing) > MAX_LISTED else "")
    text = f"cannot merge: {len(missing)} of {total} batch groups are missing or incomplete ({listed})"
    if shard_count:
        shards = sorted({g % shard_count for g in missing})
        text += (f", from shard(s) {', '.join(f'{s}/{shard_count}' for s in shards)}: run them again (each "
                 "continues from its part files), then merge")
    else:
        text += ": run again with --resume (it continues from the part files)"
    return text + "; nothing was changed"


def _merged_endpoint_usage(parts: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Requests, failures and set-asides per endpoint, summed over every process and attempt."""
    merged: dict[str, dict[str, Any]] = {}
    for part in parts:
        for url, usage in (part.get("endpoints") or {}).items():
            entry = merged.setdefault(url, {"requests": 0, "failures": 0, "set_aside": 0})
            for key in ("requests", "failures", "set_aside"):
                entry[key] += usage.get(key, 0)
            if usage.get("last_error"):
                entry["last_error"] = usage["last_error"]
    return merged


def _unit_order(group: list[Unit]) -> Callable[[dict[str, Any]], int]:
    position = {unit.uid: i for i, unit in enumerate(group)}
    return lambda record: position[record["unit"]]


def _reasoning_usage(records: list[dict[str, Any]]) -> dict[str, Any]:
    """A thinking model's reasoning tokens and the replies that reasoned past ``--max-reasoning-tokens``,
    over every call (every attempt, in feedback mode); nothing for runs whose model did not think."""
    calls = [a for r in records for a in ([a for turn in r["feedback"]["attempts"] for a in turn]
                                          if "feedback" in r else r["turns"])]
    turns = [t for t in calls if "reasoning_tokens" in t]
    if not turns:
        return {}
    return {"reasoning_tokens": sum(t["reasoning_tokens"] for t in turns),
            "reasoning_over_budget": sum(bool(t.get("reasoning_over_budget")) for t in turns)}


def _merged_timings(parts: list[dict[str, Any]], records: list[dict[str, Any]]) -> dict[str, Any]:
    """Sums over every process and attempt; tokens from the sample lines themselves."""
    generation = sum(p.get("generation_seconds", 0.0) for p in parts)
    new_tokens = sum(t["new_tokens"] for r in records for t in r["turns"])
    executions = {key: sum(p.get("executions", {}).get(key, 0) for p in parts)
                  for key in ExecutionStats().as_dict()}
    return {
        "generation_seconds": round(generation, 3),
        "execution_seconds": round(sum(p.get("execution_seconds", 0.0) for p in parts), 3),
        # Generation and execution overlap; these say how long each side waited for the other.
        "generation_waited_seconds": round(sum(p.get("generation_waited_seconds", 0.0) for p in parts), 3),
        "execution_waited_seconds": round(sum(p.get("execution_waited_seconds", 0.0) for p in parts), 3),
        "model_load_seconds": round(sum(p.get("model_load_seconds", 0.0) for p in parts), 3),
        "new_tokens": new_tokens,
        "prompt_tokens": sum(t["prompt_tokens"] for r in records for t in r["turns"]),
        # What the model computed: prompt tokens found in kept or shared KV caches are not recomputed.
        "prompt_tokens_computed": sum(t.get("prompt_tokens_computed", t["prompt_tokens"])
                                      for r in records for t in r["turns"]),
        "tokens_per_second": round(new_tokens / generation, 2) if generation > 0 else None,
        **_reasoning_usage(records),
        "executions": executions,
        **({"max_batch": min(limits)} if (limits := [p["max_batch"] for p in parts if p.get("max_batch")]) else {}),
        "processes": [{**{k: p.get(k) for k in ("rank", "world", "seconds", "threads")},
                       **({"shard": p["shard"]} if p.get("shard") else {})} for p in parts],
        **({"endpoints": endpoints} if (endpoints := _merged_endpoint_usage(parts)) else {}),
    }
