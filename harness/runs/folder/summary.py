"""The one shape of ``summary.json``, for ``run`` (and ``merge``) and ``evaluate`` alike: what was scored
(the suite, with its data's checksum), the model, the scores, and where and how the programs ran."""

from __future__ import annotations

from typing import Any

from harness.runs.folder import metadata
from harness.runs.folder.fingerprints import problem_checksums, run_inputs
from harness.scoring.scores import Verdict, score
from harness.suites.problems import Problem, Suite


def summary_of(suite: Suite, problems: list[Problem], verdicts: list[Verdict], *, ks: list[int], n: int,
               seed: int | None, model: dict[str, Any], limits: dict[str, Any] | None, timings: dict[str, Any],
               sandbox: dict[str, Any], exclude_defective: bool = False, prompt_format: str | None = None,
               config: dict[str, Any] | None = None, feedback: dict[str, Any] | None = None) -> dict[str, Any]:
    """``n``: samples per task (pass@k's); ``prompt_format``, ``config`` and ``feedback`` are a ``run``'s."""
    return {
        "suite": suite_record(suite, problems, exclude_defective),
        "model": model,
        **({"prompt_format": prompt_format} if prompt_format is not None else {}),
        **({"config": config} if config is not None else {}),
        "ks": ks,
        "seed": seed,
        **score(verdicts, ks, n),
        **({"feedback": feedback} if feedback is not None else {}),
        "defects": defects_of(problems),
        "limits": limits,
        "timings": timings,
        "sandbox": sandbox,
        "versions": metadata.versions(),
        "git": metadata.git_commit(),
        "machine": metadata.machine(),
    }


def defects_of(problems: list[Problem]) -> dict[str, list[str]]:
    """The known data defects of the problems a run scored, for its summary."""
    return {p.id: list(p.defects) for p in problems if p.defects}


def suite_record(suite: Suite, problems: list[Problem], exclude_defective: bool) -> dict[str, Any]:
    """What the summary says about the suite: where its data came from (with checksum) and what was left out."""
    record: dict[str, Any] = {"name": suite.name, "path": suite.path, "scorer": suite.scorer,
                              "problems": len(problems), **run_inputs(suite, problems)}
    record["problem_sha256"] = problem_checksums(suite, problems)
    if suite.origin:
        record["origin"] = suite.origin
    if exclude_defective:
        record["excluded_defective"] = [p for p in suite.excluded_if_defective
                                        if any(q.id == p for q in suite.problems)]
    return record
