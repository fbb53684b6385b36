"""One benchmark run: problems -> prompts -> generations -> programs -> executions -> scores -> results.

Work goes one batch group at a time: generate the group's conversations, run their programs in the
sandbox workers, append their sample lines to this process's part file (flushed). The sandbox runs one
group's programs while the model generates the next (``harness.runs.group_work``).
Groups depend only on the canonical unit order and the batch size, and every unit's sampling is seeded
from (run seed, unit id, turn), so results are the same for any number of processes and any resumption.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from tqdm import tqdm

from harness.backends.registry import choose_prompt_format
from harness.cache_paths import cache_root
from harness.config import RunConfig, make_backend
from harness.errors import InputError
from harness.execution.executor import Executor, make_executor
from harness.execution.problem_limits import TimeLimits
from harness.execution.time_limits import floor_limits, time_limits
from harness.generation.backend import Backend, SamplingParams
from harness.generation.conversations import ConversationGenerator, Unit, batch_groups, units_for
from harness.generation.prompt_formats import BaseCompletionFormat, ChatFormat
from harness.feedback.checker import Checker
from harness.feedback.checks import FeedbackSettings, settings_for
from harness.runs.launch import shards
from harness.runs.launch.distributed import ProcessInfo, broadcast_from_main, current_process
from harness.runs.finalize import merge_results
from harness.runs.folder.fingerprints import run_inputs
from harness.runs.group_work import GroupWork
from harness.runs.launch.progress import show_progress, wait_for_groups
from harness.runs.references import reference_conversations
from harness.runs.folder.parts import PartWriter
from harness.runs.folder.claim import default_name
from harness.runs.folder.run_folder import RunFolder
from harness.runs.launch.shards import Shard
from harness.runs.launch.threads import set_threads, threads_in_use, with_threads
from harness.suites.problems import Problem, Suite
from harness.suites.registry import resolve_suite
from sandbox.pool import SandboxPool

log = logging.getLogger(__name__)


@dataclass
class RunOutcome:
    directory: Path
    summary: dict[str, Any]  # empty on ranks other than 0, and for a shard that did not merge
    note: str = ""  # for a shard: what it did, and what is left


@dataclass
class _Plan:
    """What every process of the launch knows before it works: the run's problems and batch groups, the
    groups this launch does (``scope``: a shard's, or all), and which of them are left (``todo``)."""

    config: RunConfig
    suite: Suite
    problems: list[Problem]
    groups: list[list[Unit]]
    scope: list[int]
    shard: Shard | None
    repairs: FeedbackSettings
    directory: Path = Path()
    todo: list[int] | None = None
    finished: bool = False  # a finished run resumed, or a shard requeued after the merge: nothing to do
    earlier_files: set[Path] | None = None  # rank 0: the sample files there were before this attempt

    @property
    def members(self) -> list[set[str]]:
        return [{unit.uid for unit in group} for group in self.groups]

    def total(self) -> int:
        return sum(len(self.groups[g]) for g in self.scope)

    def done_before(self) -> int:
        return sum(len(self.groups[g]) for g in self.scope if g not in (self.todo or []))


@dataclass
class _Started:
    """What a process starts with: the sandbox pool (not yet entered), the model and its prompt format."""

    pool: SandboxPool
    backend: Backend
    prompt_format: BaseCompletionFormat | ChatFormat
    started: float
    load_seconds: float


def run_benchmark(config: RunConfig) -> RunOutcome:
    """Run ``config`` in this process; under ``accelerate launch``/``torchrun`` every rank calls this, does
    its share of the batch groups, and rank 0 merges. With ``--shard i/N`` the launch does only the groups
    ``g mod N == i`` and merges only with ``--merge-when-complete`` (see ``_end_shard``). Returns the outcome
    (an empty summary on ranks other than 0, and for a shard that did not merge)."""
    process = current_process(cpu=config.device == "cpu")
    plan = _plan(config)
    run_dir = _share_plan(plan, process)
    if plan.finished:
        return RunOutcome(plan.directory, {}, f"{plan.directory}: this run is finished (summary.json) and has "
                                              "nothing left to do; nothing to do, nothing was changed")
    mine = (plan.todo or [])[process.rank::process.world]
    if plan.shard is not None:
        log.info("shard %s: %d of %d batch groups are this shard's", plan.shard, len(plan.scope), len(plan.groups))
    log.info("rank %d/%d: suite %s, %d problems, model %s, n=%d; %d of %d batch groups are this process's; "
             "results in %s", process.rank, process.world, plan.suite.name, len(plan.problems), plan.config.model,
             plan.config.n, len(mine), len(plan.groups), plan.directory)
    start = _start(plan, process, run_dir)
    part = (run_dir or RunFolder(plan.directory)).open_part(process.rank, plan.shard)
    progress = tqdm(total=plan.total(), initial=plan.done_before(), desc="samples", unit="sample",
                    dynamic_ncols=True, disable=not process.is_main)
    on_group_done = functools.partial(show_progress, progress, run_dir, plan.total(), plan.shard)
    timings, record = _work_share(plan, start, mine, part, on_group_done, progress)
    part.write_timings({**timings, **_process_record(plan, start, process, record)})
    part.close()
    if not process.is_main:
        return RunOutcome(plan.directory, {})
    assert run_dir is not None
    wait_for_groups(run_dir, plan.members, set(plan.scope), plan.earlier_files or set(), progress, plan.total(),
                    plan.shard)
    progress.close()
    if plan.shard is None:
        return RunOutcome(run_dir.directory, merge_results(run_dir, plan.config, plan.suite, plan.problems,
                                                           plan.groups, time.time() - start.started))
    return _end_shard(run_dir, plan.config, plan.suite, plan.problems, plan.groups, plan.shard)


def _plan(config: RunConfig) -> _Plan:
    """The run's problems and groups, from the config alone (every process computes the same)."""
    shard = shards.resolve(config.shard)
    suite = resolve_suite(config.suite, config.data)
    problems = suite.select_problems(config.problems, config.limit, config.exclude_defective)
    repairs = settings_for(config.feedback, config.max_repairs, suite.feedback, suite.max_repairs)
    if repairs.enabled:  # recorded (and checked on resume) as in effect, wherever it was set
        config = replace(config, feedback=repairs.mode, max_repairs=repairs.max_repairs)
    else:  # off, however it was spelled (--feedback none, no --feedback): recorded alike, a --max-repairs too
        if config.max_repairs is not None:
            log.warning("--max-repairs does nothing without feedback (--feedback errors|tests); not recorded")
        config = replace(config, feedback=None, max_repairs=None)
    groups = batch_groups(units_for(problems, config.n), config.batch_size)
    scope = [g for g in range(len(groups)) if shard is None or shard.owns(g)]
    return _Plan(config, suite, problems, groups, scope, shard, repairs)


def _share_plan(plan: _Plan, process: ProcessInfo) -> RunFolder | None:
    """Rank 0 prepares the run folder (claimed, checked on resume) and finds the groups left to do; every
    process learns the folder, those groups and the thread count from it. Returns rank 0's folder."""
    run_dir: RunFolder | None = None
    shared: dict[str, Any] | None = None
    if process.is_main:
        try:
            run_dir, shared = _prepare(plan)
        except InputError as exc:
            shared = {"error": exc}
    shared = broadcast_from_main(shared, process)
    if "error" in shared:
        raise shared["error"]
    plan.directory, plan.todo, plan.finished = Path(shared["directory"]), shared["todo"], shared["finished"]
    plan.config = set_threads(plan.config, shared["threads"])
    return run_dir


def _prepare(plan: _Plan) -> tuple[RunFolder, dict[str, Any]]:
    config, suite = plan.config, plan.suite
    run_dir = RunFolder.at(config.results_dir, run_name_for(config, suite.name))
    config = with_threads(config, run_dir)
    recorded, inputs = config.as_dict(), run_inputs(suite, plan.problems)  # what the folder records and checks
    sharded = plan.shard is not None
    if (config.resume or sharded) and run_dir.finished_already(recorded, inputs, plan.members, plan.scope, sharded):
        return run_dir, {"directory": str(run_dir.directory), "todo": [], "threads": config.threads,
                         "finished": True}
    plan.earlier_files, done = run_dir.start(recorded, inputs, plan.members, overwrite=config.overwrite,
                                             resume=config.resume, shard=plan.shard)
    if done:
        log.info("resuming: %d of %d batch groups already done", len(done), len(plan.groups))
    return run_dir, {"directory": str(run_dir.directory), "todo": [g for g in plan.scope if g not in done],
                     "threads": config.threads, "finished": False}


def run_name_for(config: RunConfig, suite_name: str) -> str:
    """``--run-name``, else one made from the suite, the model, the sampling and the time."""
    if config.run_name:
        return config.run_name
    return default_name(suite_name, Path(config.model).name or config.model, f"n{config.n}",
                        f"t{config.temperature}", time.strftime("%Y%m%d-%H%M%S"))


def _start(plan: _Plan, process: ProcessInfo, run_dir: RunFolder | None) -> _Started:
    """The sandbox pool, then the model: made before the model loads, the pool refuses at once a missing
    isolation layer (``--sandbox full``) or a sandbox that cannot run programs (its canary fails); then
    infilling problems for a model that cannot fill in the middle. Any refusal removes the stub folder."""
    config, suite = plan.config, plan.suite
    try:
        if config.verdict_cache:
            cache_root()  # a bad HARNESS_CACHE is refused now, not after the model has loaded
        pool = SandboxPool(workers=config.workers, mode=config.sandbox, python=config.sandbox_python,
                           preload=suite.preload)
        started = time.time()
        backend = make_backend(config, process.device)
        load_seconds = time.time() - started
        prompt_format = choose_prompt_format(config.prompt_format, backend)
        if not backend.supports_infilling and (middle := next((p for p in plan.problems if p.suffix), None)):
            raise InputError("this model cannot fill in the middle, which the infilling suites need (Code Llama "
                             "7B/13B can)", file=middle.source, problem=middle.id, field="model")
    except BaseException:
        if run_dir is not None:
            run_dir.abandon()  # a failed start leaves no folder in the way of the corrected rerun
        raise
    log.info("prompt format: %s", prompt_format.name)
    return _Started(pool, backend, prompt_format, started, load_seconds)


_InPool = tuple[Executor, TimeLimits, dict[str, Any]]  # what the summary needs from inside the sandbox pool


def _work_share(plan: _Plan, start: _Started, mine: list[int], part: PartWriter, on_group_done: Callable[[], None],
                progress: tqdm) -> tuple[dict[str, float], _InPool]:
    """Generate and execute this process's groups inside the sandbox pool: its clocks, and the executor,
    the time limits and the sandbox's isolation layers."""
    config, suite = plan.config, plan.suite
    sampling = SamplingParams(temperature=config.temperature, top_p=config.top_p)
    generator = ConversationGenerator(start.backend, sampling, config.seed, suite.program_prefix,
                                      prompt_format=start.prompt_format, max_new_tokens=config.max_new_tokens,
                                      max_reasoning_tokens=config.max_reasoning_tokens,
                                      suffix_first=config.infilling_mode == "spm")
    try:
        with start.pool as pool:
            log.info("sandbox: %s", pool.isolation.as_dict())
            executor = make_executor(pool, config.dedup, config.verdict_cache)
            limits = time_limits(pool, plan.problems, floor_limits(config.timeout, config.memory_mb),
                                 functools.partial(reference_conversations, program_prefix=suite.program_prefix))
            if plan.repairs.enabled:
                generator.checker = Checker(plan.repairs, executor, limits)
            timings = GroupWork(generator, plan.groups, executor, limits, part, on_group_done).run(mine)
            isolation = pool.isolation.as_dict()
    except BaseException:
        progress.close()  # ends the bar's line, so that the error is a line of its own
        raise
    return timings, (executor, limits, isolation)


def _process_record(plan: _Plan, start: _Started, process: ProcessInfo, record: _InPool) -> dict[str, Any]:
    """What this process's timings file says besides its clocks: the model, prompt and sandbox (a merge
    takes the summary's from here)."""
    executor, limits, isolation = record
    backend = start.backend
    timings: dict[str, Any] = {}
    if getattr(backend, "max_batch", None):  # lowered after running out of memory
        timings["max_batch"] = backend.max_batch
    timings.update(getattr(backend, "usage", dict)())  # e.g. requests and failures per endpoint
    timings.update(executions=executor.stats.as_dict(), model_load_seconds=round(start.load_seconds, 3),
                   seconds=round(time.time() - start.started, 3), rank=process.rank, world=process.world,
                   threads=threads_in_use(), shard=str(plan.shard) if plan.shard else None,
                   model=backend.identity(), prompt_format=start.prompt_format.name, sandbox=isolation,
                   limits=limits.record(plan.problems), started_at=start.started, ended_at=time.time())
    return timings


def _end_shard(run_dir: RunFolder, config: RunConfig, suite: Suite, problems: list[Problem],
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
