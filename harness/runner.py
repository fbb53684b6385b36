"""One benchmark run: problems -> prompts -> generations -> programs -> executions -> scores -> results.

Work goes one batch group at a time: generate the group's conversations, run their programs in the
sandbox workers, append their sample lines to this process's part file (flushed). The sandbox runs one
group's programs while the model generates the next.
Groups depend only on the canonical unit order and the batch size, and every unit's sampling is seeded
from (run seed, unit id, turn), so results are the same for any number of processes and any resumption.
"""

from __future__ import annotations

import json
import logging
import queue
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from tqdm import tqdm

from harness import metadata, run_folder
from harness import validate_input as validate
from harness.backends.base import Backend, SamplingParams
from harness.cache_paths import cache_root
from harness.config import RunConfig
from harness.distributed import broadcast_from_main, current_process
from harness.errors import InputError
from harness.executor import ExecutionStats, Executor
from harness import feedback
from harness.generation import Conversation, ConversationRunner, Unit, batch_groups, units_for
from harness.problems import MULTI_TURN, Problem
from harness.prompting import BaseCompletionFormat, ChatFormat
from harness.programs import job_for
from harness.results import sample_record, write_json
from harness.fingerprints import run_inputs
from harness.run_directory import PartWriter, RunDirectory
from harness.scoring import Verdict, feedback_scores, score
from harness.suite_loader import Suite
from harness.suites import resolve_suite
from harness.verdict_cache import VerdictCache
from sandbox.pool import Execution, Limits, SandboxPool

log = logging.getLogger(__name__)


@dataclass
class RunOutcome:
    directory: Path
    summary: dict[str, Any]


def select_problems(suite: Suite, wanted: list[str], limit: int | None,
                    exclude_defective: bool = False) -> list[Problem]:
    problems = list(suite.problems)
    if exclude_defective:
        problems = [p for p in problems if p.id not in suite.excluded_if_defective]
    if wanted:
        known = {p.id for p in problems}
        missing = [w for w in wanted if w not in known]
        if missing:
            raise InputError(f"no such problem in suite {suite.name}", file=suite.path, problem=missing[0],
                             field="problems")
        problems = [p for p in problems if p.id in set(wanted)]
    return problems[:limit] if limit else problems


def make_backend(config: RunConfig, launch_device: str | None = None) -> Backend:
    from harness.backends.reference import ReferenceBackend

    if config.model == "reference":
        return ReferenceBackend()
    if config.backend == "openai":
        from harness.backends.openai_compatible import OpenAICompatibleBackend

        if not config.base_url:
            raise InputError("--backend openai needs --base-url (e.g. http://localhost:8000/v1)", field="base_url")
        return OpenAICompatibleBackend(config.base_url, config.model, api_key_env=config.api_key_env,
                                       concurrency=config.concurrency, timeout=config.request_timeout,
                                       max_retries=config.max_retries,
                                       samples_per_request=config.samples_per_request)
    from harness.backends.huggingface import HuggingFaceBackend
    from harness.tiny_models import TINY_MODELS, tiny_model_path

    model = str(tiny_model_path(config.model)) if config.model in TINY_MODELS else config.model
    device = launch_device if config.device == "auto" and launch_device else config.device
    backend = HuggingFaceBackend(model, device=device, dtype=config.dtype,
                                 trust_remote_code=config.trust_remote_code, revision=config.revision,
                                 device_map=config.device_map, reuse_kv=config.kv_reuse,
                                 attn_implementation=config.attn_implementation, load_in=config.load_in,
                                 max_length=config.max_length)
    backend.model_id = config.model
    return backend


def choose_prompt_format(requested: str, backend: Backend) -> BaseCompletionFormat | ChatFormat:
    """``auto`` takes the chat format for models with a chat template (Instruct), the base one otherwise."""
    if requested == "auto":
        requested = "chat" if backend.prefers_chat else "base"
    if requested == "chat":
        if not backend.supports_chat:
            raise InputError("this model has no chat template (it is not an Instruct/chat model); use "
                             "--prompt-format base", field="prompt_format")
        return ChatFormat()
    return BaseCompletionFormat()


def run_name_for(config: RunConfig, suite: Suite) -> str:
    if config.run_name:
        return config.run_name
    return run_folder.default_name(suite.name, Path(config.model).name or config.model, f"n{config.n}",
                                   f"t{config.temperature}", time.strftime("%Y%m%d-%H%M%S"))


def uses_torch_threads(config: RunConfig) -> bool:
    return config.backend == "huggingface" and config.model != "reference"


def with_threads(config: RunConfig, run_dir: RunDirectory) -> RunConfig:
    """Rank 0: the run's intra-op thread count. ``--threads``, else what the interrupted run recorded (on
    ``--resume``), else this process's count (torch's default: the cores, or ``OMP_NUM_THREADS``)."""
    if config.threads is not None or not uses_torch_threads(config):
        return config
    previous = run_dir.recorded_config() if config.resume else None
    if previous is not None and "threads" not in previous:
        return config  # interrupted before runs recorded their thread count: resumed as it ran, unrecorded
    recorded = (previous or {}).get("threads")
    if recorded is None:
        import torch

        recorded = torch.get_num_threads()
    return replace(config, threads=validate.integer(recorded, "threads", minimum=1,
                                                    file=str(run_dir.directory / "config.yaml")))


def set_threads(config: RunConfig, threads: int | None) -> RunConfig:
    """Every process computes with rank 0's thread count: on CPU another count can change samples."""
    if threads is None:
        return config
    import torch

    torch.set_num_threads(threads)
    return replace(config, threads=threads)


def threads_in_use() -> int | None:
    """This process's intra-op thread count, for the summary (None when torch is not loaded)."""
    torch = sys.modules.get("torch")
    return torch.get_num_threads() if torch is not None else None


def limits_for(config: RunConfig) -> Limits:
    return Limits(wall_seconds=config.timeout, cpu_seconds=config.timeout, memory_mb=config.memory_mb)


def execute(conversations: list[Conversation], executor: Executor, limits: Limits,
            progress: tqdm | None = None) -> list[Execution]:
    jobs = [job_for(c, limits) for c in conversations]
    return executor.run(jobs, on_done=progress.update if progress is not None else None)


def make_executor(pool: SandboxPool, dedup: bool, use_cache: bool) -> Executor:
    cache = VerdictCache(cache_root() / "verdicts.sqlite", pool.python) if use_cache else None
    return Executor(pool, dedup=dedup, cache=cache)


def verdict_of(conversation: Conversation, execution: Execution) -> Verdict:
    unit = conversation.unit
    return make_verdict(unit.problem, unit.case, unit.sample, execution.passed, execution.status, execution.turn,
                        execution.tiers)


def verdict_from_record(record: dict[str, Any], problem: Problem) -> Verdict:
    return make_verdict(problem, record["case"], record["sample"], record["passed"], record["status"],
                        record["failed_turn"], record.get("tiers"))


def make_verdict(problem: Problem, case: int, sample: int, passed: bool, status: str, turn: int | None,
                 tiers: dict[str, bool] | None = None) -> Verdict:
    base_passed = None
    if problem.metadata.get("tiers"):  # HumanEval+: the tests' process decides each tier
        base_passed = bool((tiers or {}).get("base", False))
    return Verdict(problem_id=problem.id, category=problem.category, case=case, sample=sample, passed=passed,
                   status=status, turn=turn, num_turns=len(problem.turns) if problem.kind == MULTI_TURN else 1,
                   base_passed=base_passed)


def defects_of(problems: list[Problem]) -> dict[str, list[str]]:
    """The known data defects of the problems a run scored, for its summary."""
    return {p.id: list(p.defects) for p in problems if p.defects}


def suite_record(suite: Suite, problems: list[Problem], exclude_defective: bool) -> dict[str, Any]:
    """What the summary says about the suite: where its data came from (with checksum) and what was left out."""
    record: dict[str, Any] = {"name": suite.name, "path": suite.path, "scorer": suite.scorer,
                              "problems": len(problems), **run_inputs(suite, problems)}
    if suite.origin:
        record["origin"] = suite.origin
    if exclude_defective:
        record["excluded_defective"] = [p for p in suite.excluded_if_defective
                                        if any(q.id == p for q in suite.problems)]
    return record


def run_benchmark(config: RunConfig) -> RunOutcome:
    """Run ``config`` in this process; under ``accelerate launch``/``torchrun`` every rank calls this, does
    its share of the batch groups, and rank 0 merges. Returns the outcome on rank 0 (``None`` elsewhere)."""
    process = current_process(cpu=config.device == "cpu")
    suite = resolve_suite(config.suite, config.data)
    problems = select_problems(suite, config.problems, config.limit, config.exclude_defective)
    repairs = feedback.settings_for(config.feedback, config.max_repairs, suite.feedback, suite.max_repairs)
    if repairs.enabled:  # recorded (and checked on resume) as in effect, wherever it was set
        config = replace(config, feedback=repairs.mode, max_repairs=repairs.max_repairs)
    units = units_for(problems, config.n)
    groups = batch_groups(units, config.batch_size)
    sizes = [len(group) for group in groups]
    members = [{unit.uid for unit in group} for group in groups]
    run_dir: RunDirectory | None = None
    plan: dict[str, Any]
    if process.is_main:
        try:
            run_dir = RunDirectory(run_folder.folder_for(config.results_dir, run_name_for(config, suite)))
            config = with_threads(config, run_dir)
            run_dir.prepare(config, run_inputs(suite, problems))
            done = run_dir.done_groups(members, redo_sandbox_errors=True)
            plan = {"directory": str(run_dir.directory), "todo": [g for g in range(len(groups)) if g not in done],
                    "threads": config.threads}
            if done:
                log.info("resuming: %d of %d batch groups already done", len(done), len(groups))
        except InputError as exc:
            plan = {"error": exc}
        plan = broadcast_from_main(plan, process)
    else:
        plan = broadcast_from_main(None, process)
    if "error" in plan:
        raise plan["error"]
    directory = Path(plan["directory"])
    mine = plan["todo"][process.rank::process.world]
    log.info("rank %d/%d: suite %s, %d problems, model %s, n=%d; %d of %d batch groups are this process's; "
             "results in %s", process.rank, process.world, suite.name, len(problems), config.model, config.n,
             len(mine), len(groups), directory)
    config = set_threads(config, plan["threads"])
    try:
        if config.verdict_cache:
            cache_root()  # a bad HARNESS_CACHE is refused now, not after the model has loaded
        # Made before the model loads, so that a missing isolation layer (--sandbox strict) or a sandbox
        # python that does not run is refused at once; its servers start with the first program.
        pool = SandboxPool(workers=config.workers, mode=config.sandbox, python=config.sandbox_python,
                           preload=suite.preload)
        started = time.time()
        backend = make_backend(config, process.device)
        load_seconds = time.time() - started
        prompt_format = choose_prompt_format(config.prompt_format, backend)
    except BaseException:
        if run_dir is not None:
            run_dir.abandon()  # a failed start leaves no folder in the way of the corrected rerun
        raise
    log.info("prompt format: %s", prompt_format.name)
    runner = ConversationRunner(backend, SamplingParams(temperature=config.temperature, top_p=config.top_p),
                                config.seed, suite.program_prefix, prompt_format=prompt_format,
                                max_new_tokens=config.max_new_tokens)
    part = (run_dir or RunDirectory(directory)).open_part(process.rank)
    progress = tqdm(total=len(units), initial=sum(sizes[g] for g in range(len(groups)) if g not in plan["todo"]),
                    desc="samples", unit="sample", dynamic_ncols=True, disable=not process.is_main)
    try:
        with pool:
            log.info("sandbox: %s", pool.isolation.as_dict())
            executor = make_executor(pool, config.dedup, config.verdict_cache)
            if repairs.enabled:
                runner.checker = feedback.Checker(repairs, executor, limits_for(config))
            timings = _work(runner, groups, mine, executor, limits_for(config), part,
                            lambda: _show_progress(progress, run_dir, len(units)))
            isolation = pool.isolation.as_dict()
    except BaseException:
        progress.close()  # ends the bar's line, so that the error is a line of its own
        raise
    if getattr(backend, "max_batch", None):  # lowered after running out of memory
        timings["max_batch"] = backend.max_batch
    timings.update(getattr(backend, "usage", dict)())  # e.g. requests and failures per endpoint
    timings.update(executions=executor.stats.as_dict(), model_load_seconds=round(load_seconds, 3),
                   seconds=round(time.time() - started, 3), rank=process.rank, world=process.world,
                   threads=threads_in_use())
    part.write_timings(timings)
    part.close()
    if not process.is_main:
        return RunOutcome(directory, {})
    assert run_dir is not None
    done = _wait_for_all_groups(run_dir, members, progress, len(units))
    progress.close()
    records = [record for g in range(len(groups)) for record in sorted(done[g], key=_unit_order(groups[g]))]
    run_dir.write_samples(records)
    by_id = {p.id: p for p in problems}
    verdicts = [verdict_from_record(r, by_id[r["task_id"]]) for r in records]
    summary = {
        "suite": suite_record(suite, problems, config.exclude_defective),
        "model": backend.identity(),
        "prompt_format": prompt_format.name,
        "config": config.as_dict(),
        "ks": config.k,
        "seed": config.seed,
        **score(verdicts, config.k, config.n),
        **({"feedback": {**repairs.as_dict(), **feedback_scores(verdicts, records, config.k, config.n,
                                                                 repairs.max_repairs)}} if repairs.enabled else {}),
        "defects": defects_of(problems),
        "timings": {**_merged_timings(run_dir, records), "wall_seconds": round(time.time() - started, 3)},
        "sandbox": isolation,
        "versions": metadata.versions(),
        "git": metadata.git_commit(),
        "machine": metadata.machine(),
    }
    write_json(run_dir.directory / "summary.json", summary)
    run_dir.finish()
    return RunOutcome(run_dir.directory, summary)


def _work(runner: ConversationRunner, groups: list[list[Unit]], mine: list[int], executor: Executor,
          limits: Limits, part: PartWriter, on_group_done: Callable[[], None]) -> dict[str, Any]:
    """This process's share: generate each group, execute its programs, append its lines (flushed).

    Generation and execution overlap: while the sandbox runs group i's programs on a thread of its own,
    this thread generates group i+1, so the model waits only when the sandbox is truly the bottleneck (and
    the other way round). Groups are executed and appended in the order generated, as before; at most one
    generated group waits for the sandbox, so memory stays bounded. Each side's busy and waiting time is
    returned for the summary."""
    handoff: queue.Queue = queue.Queue(maxsize=1)
    clock = {"execution_seconds": 0.0, "execution_waited_seconds": 0.0}
    failure: list[BaseException] = []

    def execute_groups() -> None:
        while True:
            t0 = time.perf_counter()
            item = handoff.get()
            clock["execution_waited_seconds"] += time.perf_counter() - t0
            if item is None:
                return
            index, conversations = item
            t1 = time.perf_counter()
            try:
                if runner.checker is None:
                    executions, extras = execute(conversations, executor, limits), [{}] * len(conversations)
                else:  # the hidden tests' verdict after every repair round
                    executions, extras = feedback.execute_rounds(conversations, executor, limits,
                                                                 runner.checker.max_repairs)
                part.append([{"group": index, **sample_record(c, e, runner.seed), **extra}
                             for c, e, extra in zip(conversations, executions, extras)])
            except BaseException as exc:  # handed to the generating thread, which stops the run
                failure.append(exc)
                return
            finally:
                clock["execution_seconds"] += time.perf_counter() - t1
            on_group_done()

    def hand_over(item: tuple[int, list[Conversation]] | None) -> None:
        """Blocks while the sandbox is still busy with the previous group, unless it has failed."""
        while not failure:
            try:
                handoff.put(item, timeout=0.5)
                return
            except queue.Full:
                continue

    executing = threading.Thread(target=execute_groups, name="execute-groups", daemon=True)
    executing.start()
    generation_seconds = generation_waited_seconds = 0.0
    try:
        for index in mine:
            t0 = time.perf_counter()
            conversations = runner.run_group(groups[index])
            t1 = time.perf_counter()
            generation_seconds += t1 - t0
            hand_over((index, conversations))
            generation_waited_seconds += time.perf_counter() - t1
            if failure:
                break
    finally:
        hand_over(None)  # the groups already handed over are executed and written before this returns
        executing.join()
    if failure:
        raise failure[0]
    return {"generation_seconds": round(generation_seconds, 3),
            "generation_waited_seconds": round(generation_waited_seconds, 3),
            "execution_seconds": round(clock["execution_seconds"], 3),
            "execution_waited_seconds": round(clock["execution_waited_seconds"], 3)}


def _show_progress(progress: tqdm, run_dir: RunDirectory | None, total: int) -> None:
    """Rank 0's bar counts every process's lines, read from their part files."""
    if run_dir is not None and not progress.disable:
        progress.n = min(total, run_dir.count_lines())
        progress.refresh()


def _wait_for_all_groups(run_dir: RunDirectory, members: list[set[str]], progress: tqdm,
                         total: int) -> dict[int, list[dict[str, Any]]]:
    """Rank 0 waits for the other processes' groups by watching their files (no collective: a slow rank
    never trips a communication timeout). A launcher ends the whole job if a rank dies."""
    seen = -1
    while True:
        written = run_dir.count_lines()
        if written != seen:  # parse the files again only when some process has appended to them
            seen = written
            done = run_dir.done_groups(members)
            if len(done) == len(members):
                progress.n = total
                progress.refresh()
                return done
            progress.n = min(total, written)
            progress.refresh()
        time.sleep(0.5)


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


def _merged_timings(run_dir: RunDirectory, records: list[dict[str, Any]]) -> dict[str, Any]:
    """Sums over every process and attempt; tokens from the sample lines themselves."""
    parts = []
    for path in sorted(run_dir.parts.glob("*.timings.json")):
        try:
            parts.append(json.loads(path.read_text(encoding="utf-8")))
        except (OSError, json.JSONDecodeError):
            continue
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
        "executions": executions,
        **({"max_batch": min(limits)} if (limits := [p["max_batch"] for p in parts if p.get("max_batch")]) else {}),
        "processes": [{k: p.get(k) for k in ("rank", "world", "seconds", "threads")} for p in parts],
        **({"endpoints": endpoints} if (endpoints := _merged_endpoint_usage(parts)) else {}),
    }
