"""What the run browser shows, computed from finished run folders: a light index of every sample (for the
problem list and its filters), one compressed chunk of full sample details per problem and run (decompressed
by the page only when a sample of that problem is opened), and, for two runs, the samples that flipped.

Sample lines are read defensively: fields this module does not know are kept and shown as they are, and
fields it uses may be missing (older or newer runs).
"""

from __future__ import annotations

import base64
import gzip
import json
from dataclasses import dataclass, field
from typing import Any

from harness.reports.compare import compare_runs
from harness.reports.finished_runs import FinishedRun
from harness.reports.paper_column import paper_rows, summary_line

# Fields shown in their own place on the sample page; anything else in a sample line goes under "other fields".
KNOWN_FIELDS = {"group", "task_id", "case", "sample", "unit", "seed", "inputs", "expected", "turns", "program",
                "passed", "status", "reason", "failed_turn", "stdout", "stderr", "duration", "execution"}
REASON_CHARS = 300  # the index keeps the head of a reason (for search and the sample table); the chunk has it all


def compress(data: Any) -> str:
    """JSON, gzip (fixed mtime: the same runs give the same page), base64: what the page's
    DecompressionStream reads back."""
    raw = json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    return base64.b64encode(gzip.compress(raw, compresslevel=6, mtime=0)).decode("ascii")


def turn_parts(raw: Any, completion: Any) -> list[list[Any]]:
    """A turn's model output as ``[text, cut]`` pieces: what the program kept, and (``cut`` true) what
    truncation or code extraction dropped, so the page can dim it."""
    raw = raw if isinstance(raw, str) else ""
    kept = completion if isinstance(completion, str) else raw
    if raw == kept:
        return [[kept, False]]
    if kept and kept in raw:
        start = raw.index(kept)
        parts = [[raw[:start], True], [kept, False], [raw[start + len(kept):], True]]
        return [part for part in parts if part[0]]
    # Code extracted from a chat reply need not be a substring of it: the kept code, then the whole reply dimmed.
    return [part for part in ([kept, False], [raw, True]) if part[0]]


def turn_spans(program: str, turns: list[dict[str, Any]]) -> list[list[int] | None]:
    """The program's 1-based line range ``[first, last]`` written by each turn (its prompt text, when the
    program contains it, and its completion), found in order; ``None`` where a turn's text is not found
    (a chat reply that restated a function, say)."""
    spans: list[list[int] | None] = []
    cursor = 0
    for turn in turns:
        prompt = turn.get("prompt") if isinstance(turn.get("prompt"), str) else ""
        completion = turn.get("completion") if isinstance(turn.get("completion"), str) else ""
        at_prompt = program.find(prompt, cursor) if prompt else -1
        search_from = at_prompt + len(prompt) if at_prompt >= 0 else cursor
        at_completion = program.find(completion, search_from) if completion else search_from
        if at_completion < 0 or (at_prompt < 0 and not completion):
            spans.append(None)
            continue
        start = at_prompt if at_prompt >= 0 else at_completion
        end = max(start, at_completion + len(completion) - 1)
        if end > start and program[end] == "\n":
            end -= 1
        spans.append([program.count("\n", 0, start) + 1, program.count("\n", 0, end) + 1])
        cursor = at_completion + len(completion)
    return spans


def sample_tier(record: dict[str, Any], tiered: bool) -> str | None:
    """The highest scorer tier a sample passed (``plus``: base and plus inputs; ``base``: the base inputs
    only; ``none``), or ``None`` when the run has no tiers. Read from the verdict's ``tiers``
    (``{"base": bool, "plus": bool}``); a line without them (written before tiers were data) counts as
    ``plus`` when it passed and ``none`` otherwise."""
    tiers = record.get("tiers")
    if isinstance(tiers, dict) and tiers:
        passed = [name for name, ok in tiers.items() if ok is True]
        return passed[-1] if passed else "none"
    if not tiered:
        return None
    return "plus" if record.get("passed") else "none"


def repair_round(record: dict[str, Any]) -> int | None:
    value = record.get("repair_round", record.get("round"))
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def sample_detail(record: dict[str, Any]) -> dict[str, Any]:
    """Everything the sample page shows for one sample line."""
    turns = [t for t in record.get("turns") or [] if isinstance(t, dict)]
    program = record.get("program") if isinstance(record.get("program"), str) else ""
    return {
        "unit": record.get("unit"),
        # As text: JavaScript numbers would round a seed above 2**53.
        "seed": str(record["seed"]) if isinstance(record.get("seed"), int) else record.get("seed"),
        "case": record.get("case"), "sample": record.get("sample"), "inputs": record.get("inputs"), "expected": record.get("expected"),
        "turns": [{"prompt": t.get("prompt") if isinstance(t.get("prompt"), str) else "",
                   "parts": turn_parts(t.get("raw"), t.get("completion")),
                   "tokens": [t.get("prompt_tokens"), t.get("new_tokens")],
                   "prompt_truncated": bool(t.get("prompt_truncated"))} for t in turns],
        "program": program, "spans": turn_spans(program, turns),
        "passed": bool(record.get("passed")), "status": record.get("status"), "reason": record.get("reason"),
        "failed_turn": record.get("failed_turn"), "stdout": record.get("stdout"), "stderr": record.get("stderr"),
        "duration": record.get("duration"), "execution": record.get("execution"),
        "other": {key: value for key, value in record.items() if key not in KNOWN_FIELDS},
    }


@dataclass
class _Strings:
    """A table of repeated strings (statuses, reasons): the index stores their positions."""

    values: list[str] = field(default_factory=list)
    positions: dict[str, int] = field(default_factory=dict)

    def __call__(self, value: Any) -> int:
        text = value if isinstance(value, str) else ("" if value is None else str(value))
        if text not in self.positions:
            self.positions[text] = len(self.values)
            self.values.append(text)
        return self.positions[text]


def _unit_of(record: dict[str, Any]) -> str:
    unit = record.get("unit")
    if isinstance(unit, str):
        return unit
    return f"{record.get('task_id')}/case{record.get('case')}/sample{record.get('sample')}"


def _run_entry(run: FinishedRun, label: str, samples: int) -> dict[str, Any]:
    family, variant = run.family()
    config = run.summary.get("config") or {}
    return {"name": label, "directory": str(run.directory), "model": run.model, "family": family,
            "variant": variant, "parameters": run.parameters, "suite": run.suite, "n": config.get("n"),
            "temperature": config.get("temperature"), "seed": run.summary.get("seed"),
            "ks": [int(k) for k in run.summary.get("ks", [1])], "samples": samples,
            "overall": run.summary.get("overall"), "tiers": run.summary.get("tiers"),
            "paper": [summary_line(row) for row in paper_rows(run, label)]}


def flipped(base: list[dict[str, Any]], cand: list[dict[str, Any]]) -> dict[str, dict[str, list[str]]]:
    """Samples (matched by unit) whose verdict changed: per problem, ``down`` (pass -> fail) and ``up``."""
    before = {_unit_of(r): bool(r.get("passed")) for r in base}
    out: dict[str, dict[str, list[str]]] = {}
    for record in cand:
        unit = _unit_of(record)
        if unit in before and before[unit] != bool(record.get("passed")):
            entry = out.setdefault(str(record.get("task_id")), {"down": [], "up": []})
            entry["up" if record.get("passed") else "down"].append(unit)
    return out


def build_view(runs: list[FinishedRun], labels: list[str]) -> tuple[dict[str, Any], list[list[str | None]]]:
    """The page's index and its chunks (``chunks[run][problem]``, base64 gzip JSON, ``None`` when the run
    has no sample of that problem)."""
    loaded = [run.samples() for run in runs]
    problems: dict[str, dict[str, Any]] = {}
    for run, records in zip(runs, loaded):
        for pid, entry in run.summary["per_problem"].items():
            problems.setdefault(pid, {"id": pid, "category": entry.get("category", "")})
        for record in records:
            problems.setdefault(str(record.get("task_id")), {"id": str(record.get("task_id")), "category": ""})
    order = {pid: i for i, pid in enumerate(problems)}
    strings = _Strings()
    index_runs, chunks = [], []
    for run, records in zip(runs, loaded):
        tiered = bool(run.summary.get("tiers"))
        grouped: list[list[dict[str, Any]]] = [[] for _ in problems]
        for record in records:
            grouped[order[str(record.get("task_id"))]].append(record)
        columns: dict[str, list[Any]] = {name: [] for name in ("p", "case", "sample", "unit", "status", "passed",
                                                               "turn", "tier", "round", "reason")}
        starts, run_chunks = [], []
        for position, group in enumerate(grouped):
            starts.append(len(columns["p"]))
            run_chunks.append(compress([sample_detail(r) for r in group]) if group else None)
            for record in group:
                turn = record.get("failed_turn")
                tier = sample_tier(record, tiered)
                columns["p"].append(position)
                columns["case"].append(record.get("case"))
                columns["sample"].append(record.get("sample"))
                columns["unit"].append(_unit_of(record))
                columns["status"].append(strings(record.get("status")))
                columns["passed"].append(1 if record.get("passed") else 0)
                columns["turn"].append(turn if isinstance(turn, int) else -1)
                columns["tier"].append(strings(tier) if tier is not None else -1)
                columns["round"].append(repair_round(record) if repair_round(record) is not None else -1)
                reason = record.get("reason") if isinstance(record.get("reason"), str) else ""
                columns["reason"].append(strings(reason[:REASON_CHARS]))
        starts.append(len(columns["p"]))
        scores = {pid: {key: value for key, value in entry.items() if key.startswith("pass")}
                  for pid, entry in run.summary["per_problem"].items()}
        index_runs.append({**_run_entry(run, labels[len(index_runs)], len(records)), "columns": columns,
                           "starts": starts, "scores": [scores.get(pid) for pid in problems]})
        chunks.append(run_chunks)
    index: dict[str, Any] = {"version": 1, "problems": list(problems.values()), "runs": index_runs,
                             "strings": strings.values, "flips": None}
    if len(runs) == 2:
        index["flips"] = _flips(runs, loaded, order)
    return index, chunks


def _flips(runs: list[FinishedRun], loaded: list[list[dict[str, Any]]], order: dict[str, int]) -> dict[str, Any]:
    """The two-run comparison: ``compare``'s paired statistics and problem lists, and the flipped samples."""
    k = min(min(int(k) for k in run.summary.get("ks", [1])) for run in runs)
    result = compare_runs(runs[0], runs[1], k=k, allow_subset=True)
    stats = result.stats
    samples = flipped(loaded[0], loaded[1])
    changed = {pid: (b, c) for pid, b, c in result.worsened + result.improved}
    listed = [pid for pid, _, _ in result.worsened] + [pid for pid, _, _ in result.improved]
    listed += [pid for pid in samples if pid not in changed]
    return {"metric": result.metric, "baseline": stats.baseline, "candidate": stats.candidate,
            "difference": stats.difference.as_dict(), "p_value": stats.p_value, "regressed": stats.regressed,
            "shared": stats.problems,
            "problems": [{"p": order[pid], "before": changed.get(pid, (None, None))[0],
                          "after": changed.get(pid, (None, None))[1],
                          "down": samples.get(pid, {}).get("down", []), "up": samples.get(pid, {}).get("up", [])}
                         for pid in listed]}
