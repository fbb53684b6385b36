"""One benchmark run: problems -> prompts -> generations -> programs -> executions -> scores -> results.

Work goes one batch group at a time: generate the group's conversations, run their programs in the
sandbox workers, append their sample lines to this process's part file (flushed). The sandbox runs one
group's programs while the model generates the next.
Groups depend only on the canonical unit order and the batch size, and every unit's sampling is seeded
from (run seed, unit id, turn), so results are the same for any number of processes and any resumption.
"""

from __future__ import annotations

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

from harness.runs import run_folder

from harness.runs import shards
from harness import validate_input as validate
from harness.backends.base import Backend, SamplingParams
from harness.cache_paths import cache_root
from harness.config import RunConfig
from harness.runs.distributed import broadcast_from_main, current_process
from harness.errors import InputError
from harness.runs import feedback
from harness.execution.executor import Executor
from harness.generation.conversations import Conversation, ConversationRunner, Unit, batch_groups, units_for
from harness.runs.finalize import make_verdict, merge_results
from harness.suites.problems import Problem
from harness.generation.prompt_formats import BaseCompletionFormat, ChatFormat
from harness.execution.jobs import job_for
from harness.runs.records import sample_record
from harness.execution.time_limits import TimeLimits, time_limits
from harness.runs.fingerprints import run_inputs
from harness.runs.run_directory import PartWriter, RunDirectory
from harness.scoring.scores import Verdict
from harness.runs.shards import Shard
from harness.suites.loader import Suite
from harness.suites.registry import resolve_suite
from harness.execution.verdict_cache import VerdictCache
from sandbox.pool import Execution, Limits, SandboxPool

log = logging.getLogger(__name__)


@dataclass
class RunOutcome:
    directory: Path
    summary: dict[str, Any]  # empty on ranks other than 0, and for a shard that did not merge
    note: str = ""  # for a shard: what it did, and what is left


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
    from harness.backends.tiny_models import TINY_MODELS, tiny_model_path

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
    previous = run_dir.recorded_config() if config.resume or config.shard else None
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


def execute(conversations: list[Conversation], executor: Executor, limits: Limits | TimeLimits,
            progress: tqdm | None = None) -> list[Execution]:
    """``limits``: per problem (``harness.execution.time_limits``), or plain limits as floors."""
    per_problem = limits if isinstance(limits, TimeLimits) else TimeLimits(limits)
    jobs = [job_for(c, per_problem) for c in conversations]
    return executor.run(jobs, on_done=progress.update if progress is not None else None)


def make_executor(pool: SandboxPool, dedup: bool, use_cache: bool) -> Executor:
    cache = VerdictCache(cache_root() / "verdicts.sqlite", pool.python) if use_cache else None
    return Executor(pool, dedup=dedup, cache=cache)


def verdict_of(conversation: Conversation, execution: Execution) -> Verdict:
    unit = conversation.unit
    return make_verdict(unit.problem, unit.case, unit.sample, execution.passed, execution.status, execution.turn,
                        execution.tiers)


def run_benchmark(config: RunConfig) -> RunOutcome:
    """Run ``config`` in this process; under ``accelerate launch``/``torchrun`` every rank calls this, does
    its share of the batch groups, and rank 0 merges. With ``--shard i/N`` the launch does only the groups
    ``g mod N == i`` and merges only with ``--merge-when-complete`` (see ``_end_shard``). Returns the outcome
    (an empty summary on ranks other than 0, and for a shard that did not merge)."""
    shard = shards.resolve(config.shard)
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
    scope = [g for g in range(len(groups)) if shard is None or shard.owns(g)]  # this launch's groups
    run_dir: RunDirectory | None = None
    plan: dict[str, Any]
    if process.is_main:
        try:
            run_dir = RunDirectory(run_folder.folder_for(config.results_dir, run_name_for(config, suite)))
            config = with_threads(config, run_dir)
            if shard is None:
                run_dir.prepare(config, run_inputs(suite, problems))
            else:
                run_dir.prepare_shard(config, run_inputs(suite, problems), shard)
            earlier_files = set(run_dir.sample_files())
            done = run_dir.done_groups(members, stale=earlier_files)
            plan = {"directory": str(run_dir.directory), "todo": [g for g in scope if g not in done],
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
    if shard is not None:
        log.info("shard %s: %d of %d batch groups are this shard's", shard, len(scope), len(groups))
    log.info("rank %d/%d: suite %s, %d problems, model %s, n=%d; %d of %d batch groups are this process's; "
             "results in %s", process.rank, process.world, suite.name, len(problems), config.model, config.n,
             len(mine), len(groups), directory)
    config = set_threads(config, plan["threads"])
    try:
        if config.verdict_cache:
            cache_root()  # a bad HARNESS_CACHE is refused now, not after the model has loaded
        # Made before the model loads, so that a missing isolation layer (--sandbox strict) or a sandbox
        # that cannot run programs (its canary fails) is refused at once.
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
                                max_new_tokens=config.max_new_tokens,
                                max_reasoning_tokens=config.max_reasoning_tokens)
    part = (run_dir or RunDirectory(directory)).open_part(process.rank, shard)
    total = sum(sizes[g] for g in scope)
    progress = tqdm(total=total, initial=sum(sizes[g] for g in scope if g not in plan["todo"]),
                    desc="samples", unit="sample", dynamic_ncols=True, disable=not process.is_main)
    try:
        with pool:
            log.info("sandbox: %s", pool.isolation.as_dict())
            executor = make_executor(pool, config.dedup, config.verdict_cache)
            limits = time_limits(pool, problems, limits_for(config), suite.program_prefix)
            if repairs.enabled:
                runner.checker = feedback.Checker(repairs, executor, limits)
            timings = _work(runner, groups, mine, executor, limits, part,
                            lambda: _show_progress(progress, run_dir, total, shard))
            isolation = pool.isolation.as_dict()
    except BaseException:
        progress.close()  # ends the bar's line, so that the error is a line of its own
        raise
    if getattr(backend, "max_batch", None):  # lowered after running out of memory
        timings["max_batch"] = backend.max_batch
    timings.update(getattr(backend, "usage", dict)())  # e.g. requests and failures per endpoint
    # What the summary says about the model, prompt and sandbox: a merge takes it from here.
    timings.update(executions=executor.stats.as_dict(), model_load_seconds=round(load_seconds, 3),
                   seconds=round(time.time() - started, 3), rank=process.rank, world=process.world,
                   threads=threads_in_use(), shard=str(shard) if shard else None, model=backend.identity(),
                   prompt_format=prompt_format.name, sandbox=isolation, limits=limits.record(problems),
                   started_at=started, ended_at=time.time())
    part.write_timings(timings)
    part.close()
    if not process.is_main:
        return RunOutcome(directory, {})
    assert run_dir is not None
    _wait_for_groups(run_dir, members, set(scope), earlier_files, progress, total, shard)
    progress.close()
    if shard is None:
        return RunOutcome(run_dir.directory,
                          merge_results(run_dir, config, suite, problems, groups, time.time() - started))
    return _end_shard(run_dir, config, suite, problems, groups, shard)


def _end_shard(run_dir: RunDirectory, config: RunConfig, suite: Suite, problems: list[Problem],
               groups: list[list[Unit]], shard: Shard) -> RunOutcome:
    """A shard whose groups are all present: done, or (``--merge-when-complete``) the merger, when no other
    shard is live (each shard lets go of its lock before trying, so the last to try sees none) and every
    group of the run is present."""
    run_dir.release_locks()
    later = f"merge with `run-benchmark merge {run_dir.directory}`"
    if not config.merge_when_complete:
        return RunOutcome(run_dir.directory, {}, f"shard {shard}: its groups are done; {later} once every shard is")
    try:
        run_dir.lock_for_merge()
    except InputError:
        return RunOutcome(run_dir.directory, {}, f"shard {shard}: its groups are done; another shard or a merge is "
                                                 f"live, so this one does not merge (the last shard does, or {later})")
    try:
        if not run_dir.parts.is_dir():
            return RunOutcome(run_dir.directory, {}, f"shard {shard}: its groups are done; another shard has merged "
                                                     "the run")
        present = run_dir.done_groups([{unit.uid for unit in group} for group in groups])
        if len(present) < len(groups):
            return RunOutcome(run_dir.directory, {}, f"shard {shard}: its groups are done; {len(groups) - len(present)} "
                                                     f"of the run's {len(groups)} groups are not yet, so it does not "
                                                     f"merge (the last shard does, or {later})")
        return RunOutcome(run_dir.directory, merge_results(run_dir, config, suite, problems, groups))
    finally:
        run_dir.release_locks()  # nothing left to release after a merge


def _work(runner: ConversationRunner, groups: list[list[Unit]], mine: list[int], executor: Executor,
          limits: TimeLimits, part: PartWriter, on_group_done: Callable[[], None]) -> dict[str, Any]:
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
                on_group_done()
            except BaseException as exc:  # handed to the generating thread, which stops the run
                failure.append(exc)
                return
            finally:
                clock["execution_seconds"] += time.perf_counter() - t1

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


def _show_progress(progress: tqdm, run_dir: RunDirectory | None, total: int, shard: Shard | None) -> None:
    """Rank 0's bar counts every process's lines (of its shard), read from their part files."""
    if run_dir is not None and not progress.disable:
        progress.n = min(total, run_dir.count_lines(shard))
        progress.refresh()


def _wait_for_groups(run_dir: RunDirectory, members: list[set[str]], needed: set[int], earlier_files: set[Path],
                     progress: tqdm, total: int, shard: Shard | None) -> None:
    """Rank 0 waits for the other processes' groups (``needed``: the run's, or its shard's) by watching their
    files (no collective: a slow rank never trips a communication timeout). A launcher ends the whole job if
    a rank dies. Sandbox failures in ``earlier_files`` are being redone, so they do not count as done."""
    seen = -1
    while True:
        written = run_dir.count_lines(shard)
        if written != seen:  # parse the files again only when some process has appended to them
            seen = written
            if needed <= run_dir.done_groups(members, stale=earlier_files).keys():
                progress.n = total
                progress.refresh()
                return
            progress.n = min(total, written)
            progress.refresh()
        time.sleep(0.5)
