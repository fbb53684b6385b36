"""One benchmark run: problems -> prompts -> generations -> programs -> executions -> scores -> results.

Work goes one batch group at a time: generate the group's conversations, run their programs in the
sandbox workers, append their sample lines to ``samples.jsonl`` (flushed), then the next group.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tqdm import tqdm

from harness import metadata
from harness.backends.base import Backend, SamplingParams
from harness.config import RunConfig
from harness.cache_paths import cache_root
from harness.datasets.humaneval import PLUS_FAILURE
from harness.errors import InputError
from harness.executor import Executor
from harness.generation import Conversation, ConversationRunner, Unit, batch_groups, units_for
from harness.problems import MULTI_TURN, Problem
from harness.programs import job_for
from harness.results import RunWriter, sample_record
from harness.scoring import Verdict, score
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


def make_backend(config: RunConfig) -> Backend:
    from harness.backends.reference import ReferenceBackend

    if config.model == "reference":
        return ReferenceBackend()
    from harness.backends.huggingface import HuggingFaceBackend
    from harness.tiny_models import TINY_MODELS, tiny_model_path

    model = str(tiny_model_path(config.model)) if config.model in TINY_MODELS else config.model
    backend = HuggingFaceBackend(model, device=config.device, dtype=config.dtype,
                                 trust_remote_code=config.trust_remote_code, revision=config.revision)
    backend.model_id = config.model
    return backend


def run_name_for(config: RunConfig, suite: Suite) -> str:
    if config.run_name:
        return config.run_name
    model = re.sub(r"[^A-Za-z0-9._-]+", "_", Path(config.model).name or config.model)
    return f"{suite.name}-{model}-n{config.n}-t{config.temperature}-{time.strftime('%Y%m%d-%H%M%S')}"


def limits_for(config: RunConfig) -> Limits:
    return Limits(wall_seconds=config.timeout, cpu_seconds=config.timeout, memory_mb=config.memory_mb)


def execute(conversations: list[Conversation], executor: Executor, limits: Limits,
            progress: tqdm | None = None) -> list[Execution]:
    jobs = [job_for(c, limits) for c in conversations]
    return executor.run(jobs, on_done=progress.update if progress is not None else None)


def make_executor(pool: SandboxPool, dedup: bool, use_cache: bool) -> Executor:
    cache = VerdictCache(cache_root() / "verdicts.sqlite") if use_cache else None
    return Executor(pool, dedup=dedup, cache=cache)


def verdict_of(conversation: Conversation, execution: Execution) -> Verdict:
    unit = conversation.unit
    problem = unit.problem
    base_passed = None
    if problem.metadata.get("tiers"):  # HumanEval+: failing only the extra inputs still passes the base tests
        base_passed = execution.passed or (execution.status == "failed"
                                           and execution.reason.startswith(PLUS_FAILURE + ":"))
    return Verdict(problem_id=problem.id, category=problem.category, case=unit.case, sample=unit.sample,
                   passed=execution.passed, status=execution.status, turn=execution.turn,
                   num_turns=len(problem.turns) if problem.kind == MULTI_TURN else 1, base_passed=base_passed)


def suite_record(suite: Suite, problems: list[Problem], exclude_defective: bool) -> dict[str, Any]:
    """What the summary says about the suite: where its data came from (with checksum) and what was left out."""
    record: dict[str, Any] = {"name": suite.name, "path": suite.path, "scorer": suite.scorer,
                              "problems": len(problems)}
    if suite.origin:
        record["origin"] = suite.origin
    if exclude_defective:
        record["excluded_defective"] = [p for p in suite.excluded_if_defective
                                        if any(q.id == p for q in suite.problems)]
    return record


def run_benchmark(config: RunConfig, config_source: str = "command line") -> RunOutcome:
    suite = resolve_suite(config.suite, config.data)
    problems = select_problems(suite, config.problems, config.limit, config.exclude_defective)
    writer = RunWriter.create(Path(config.results_dir) / run_name_for(config, suite), config.overwrite)
    writer.write_config(config)
    log.info("suite %s: %d problems; model %s; n=%d; results in %s", suite.name, len(problems), config.model,
             config.n, writer.directory)
    started = time.time()
    backend = make_backend(config)
    load_seconds = time.time() - started
    sampling = SamplingParams(temperature=config.temperature, top_p=config.top_p)
    runner = ConversationRunner(backend, sampling, config.seed, suite.program_prefix,
                                max_new_tokens=config.max_new_tokens)
    units = units_for(problems, config.n)
    with SandboxPool(workers=config.workers, mode=config.sandbox, python=config.sandbox_python,
                     preload=suite.preload) as pool:
        log.info("sandbox: %s", pool.isolation.as_dict())
        executor = make_executor(pool, config.dedup, config.verdict_cache)
        verdicts, timings = _generate_and_execute(runner, batch_groups(units, config.batch_size), executor,
                                                  limits_for(config), writer, len(units))
        isolation = pool.isolation.as_dict()
    timings["executions"] = executor.stats.as_dict()
    timings["model_load_seconds"] = round(load_seconds, 3)
    timings["total_seconds"] = round(time.time() - started, 3)
    summary = {
        "suite": suite_record(suite, problems, config.exclude_defective),
        "model": backend.identity(),
        "config": config.as_dict(),
        "ks": config.k,
        "seed": config.seed,
        **score(verdicts, config.k, config.n),
        "defects": {p.id: list(p.defects) for p in problems if p.defects},
        "timings": timings,
        "sandbox": isolation,
        "versions": metadata.versions(),
        "git": metadata.git_commit(),
        "machine": metadata.machine(),
    }
    writer.write_summary(summary)
    return RunOutcome(writer.directory, summary)


def _generate_and_execute(runner: ConversationRunner, groups: Iterable[list[Unit]], executor: Executor,
                          limits: Limits, writer: RunWriter, total: int) -> tuple[list[Verdict], dict[str, Any]]:
    verdicts: list[Verdict] = []
    generation_seconds = execution_seconds = 0.0
    new_tokens = prompt_tokens = 0
    with tqdm(total=total, desc="generate", unit="conv", dynamic_ncols=True) as generated, \
            tqdm(total=total, desc="execute ", unit="prog", dynamic_ncols=True) as executed:
        for group in groups:
            t0 = time.time()
            conversations = runner.run_group(group)
            generation_seconds += time.time() - t0
            generated.update(len(group))
            t0 = time.time()
            executions = execute(conversations, executor, limits, executed)
            execution_seconds += time.time() - t0
            for conversation, execution in zip(conversations, executions):
                verdict = verdict_of(conversation, execution)
                verdicts.append(verdict)
                writer.append_sample(sample_record(conversation, execution, runner.seed))
                new_tokens += sum(t.new_tokens for t in conversation.turns)
                prompt_tokens += sum(t.prompt_tokens for t in conversation.turns)
    return verdicts, {
        "generation_seconds": round(generation_seconds, 3),
        "execution_seconds": round(execution_seconds, 3),
        "new_tokens": new_tokens,
        "prompt_tokens": prompt_tokens,
        "tokens_per_second": round(new_tokens / generation_seconds, 2) if generation_seconds > 0 else None,
    }
