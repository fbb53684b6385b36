"""``run-benchmark compare``: is a candidate run significantly worse than a baseline run?

Paired per problem on the problems both runs share: the difference in pass@k with a paired bootstrap
interval and a one-sided p-value, the problems that flipped, and (``--exact``) every sample whose
program or verdict changed, for pipelines that are deterministic end to end.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from harness.errors import InputError
from harness.reports.finished_runs import FinishedRun
from harness.scoring.statistics import PairedComparison, paired_bootstrap


@dataclass
class ComparisonResult:
    baseline: FinishedRun
    candidate: FinishedRun
    metric: str
    stats: PairedComparison
    improved: list[tuple[str, float, float]] = field(default_factory=list)
    worsened: list[tuple[str, float, float]] = field(default_factory=list)
    changed_samples: dict[str, int] | None = None  # problem -> samples whose program or verdict changed
    only_in_one: list[str] = field(default_factory=list)
    version_changes: dict[str, tuple[Any, Any]] = field(default_factory=dict)  # package -> (baseline, candidate)

    @property
    def failed(self) -> bool:
        return self.stats.regressed or bool(self.changed_samples)

    def markdown(self) -> str:
        s = self.stats
        verdict = "**regression**" if s.regressed else "no significant regression"
        lines = [
            f"### Benchmark comparison: {self.candidate.name} vs {self.baseline.name}",
            "",
            f"Suite `{self.baseline.suite}`, {s.problems} shared problems, {self.metric}.",
            "",
            f"| | baseline | candidate | difference ({100 * (1 - s.alpha):g}% CI) | p (worse by > {s.max_drop:.3f}) |",
            "|---|---|---|---|---|",
            f"| {self.metric} | {100 * s.baseline:.1f}% | {100 * s.candidate:.1f}% | "
            f"{100 * s.difference.estimate:+.1f} pts ({100 * s.difference.low:+.1f}, {100 * s.difference.high:+.1f}) "
            f"| {s.p_value:.3f} |",
            "",
            f"Result: {verdict} at alpha {s.alpha}.",
        ]
        if self.worsened:
            lines += ["", f"Worse on {len(self.worsened)} problem(s): " + ", ".join(
                f"`{pid}` ({100 * b:.0f}% → {100 * c:.0f}%)" for pid, b, c in self.worsened[:30])]
        if self.improved:
            lines += ["", f"Better on {len(self.improved)} problem(s): " + ", ".join(
                f"`{pid}` ({100 * b:.0f}% → {100 * c:.0f}%)" for pid, b, c in self.improved[:30])]
        if self.changed_samples is not None:
            if self.changed_samples:
                lines += ["", f"**Exact check failed**: samples changed in {len(self.changed_samples)} problem(s): "
                          + ", ".join(f"`{pid}` ({count})" for pid, count in sorted(self.changed_samples.items()))]
                if self.version_changes:
                    lines += ["", "The runs used different package versions (" + ", ".join(
                        f"{name} {old} → {new}" for name, (old, new) in sorted(self.version_changes.items()))
                        + "): generated samples depend on them, so rerun the baseline with the candidate's "
                          "versions (constraints.txt) before reading this as a change in the pipeline."]
            else:
                lines += ["", "Exact check: every sample's program and verdict are unchanged."]
        lines += ["", f"Samples that flipped (pass → fail, fail → pass), per problem: "
                      f"[view.html#flipped](view.html#flipped), written by `run-benchmark view "
                      f"{self.baseline.directory} {self.candidate.directory} --out view.html`."]
        if self.only_in_one:
            lines += ["", f"Compared on the shared subset; {len(self.only_in_one)} problem(s) are in one run only."]
        return "\n".join(lines) + "\n"


def compare_runs(baseline: FinishedRun, candidate: FinishedRun, k: int = 1, max_drop: float = 0.0,
                 alpha: float = 0.05, allow_subset: bool = False, exact: bool = False,
                 allow_different_settings: bool = False) -> ComparisonResult:
    metric = f"pass@{k}"
    if baseline.suite != candidate.suite:
        raise InputError(f"runs are on different suites ({baseline.suite} vs {candidate.suite})",
                         file=str(candidate.directory), field="suite")
    base, cand = baseline.per_problem(metric), candidate.per_problem(metric)
    if not base or not cand:
        missing = baseline if not base else candidate
        raise InputError(f"the run has no {metric} (computed k: {missing.summary.get('ks')})",
                         file=str(missing.directory), field="k")
    shared = [pid for pid in base if pid in cand]
    only = sorted(set(base) ^ set(cand))
    if only and not allow_subset:  # before the settings: other problems also mean another suite checksum
        raise InputError(f"the runs cover different problems ({len(only)} in one only, e.g. {only[0]}); "
                         "pass --allow-subset to compare the shared ones", file=str(candidate.directory),
                         field="problems")
    differing = differing_settings(baseline, candidate, include_problems=not allow_subset)
    if differing and not allow_different_settings:
        raise InputError("the runs were made with different settings, so their scores are not comparable: "
                         + ", ".join(f"{name} {b!r} vs {c!r}" for name, (b, c) in differing.items())
                         + "; pass --allow-different-settings to compare them anyway",
                         file=str(candidate.directory), field=next(iter(differing)))
    if not shared:
        raise InputError("the runs share no problems", file=str(candidate.directory), field="problems")
    if allow_subset and not allow_different_settings:
        _same_content(baseline, candidate, shared)
    stats = paired_bootstrap([base[p] for p in shared], [cand[p] for p in shared], max_drop=max_drop, alpha=alpha)
    result = ComparisonResult(baseline, candidate, metric, stats, only_in_one=only)
    for pid in shared:  # a tolerance: the same score summed in another order must not count as a change
        if cand[pid] > base[pid] + 1e-9:
            result.improved.append((pid, base[pid], cand[pid]))
        elif cand[pid] < base[pid] - 1e-9:
            result.worsened.append((pid, base[pid], cand[pid]))
    if exact:
        result.changed_samples = _changed_samples(baseline, candidate, set(shared))
        result.version_changes = _version_changes(baseline, candidate)
    return result


def _same_content(baseline: FinishedRun, candidate: FinishedRun, shared: list[str]) -> None:
    """The shared problems are the same problems (``suite_sha256`` covers every scored problem, so a subset
    is checked problem by problem; runs made before these checksums were recorded are not)."""
    old, new = baseline.problem_checksums(), candidate.problem_checksums()
    edited = [pid for pid in shared if pid in old and pid in new and old[pid] != new[pid]]
    if edited:
        raise InputError(f"{len(edited)} shared problem(s) differ in content (a prompt, test, expected value or "
                         f"reference was edited), e.g. {edited[0]}, so their scores are not comparable; pass "
                         "--allow-different-settings to compare them anyway", file=str(candidate.directory),
                         field="problem_sha256")


def _version_changes(baseline: FinishedRun, candidate: FinishedRun) -> dict[str, tuple[Any, Any]]:
    """Packages (and Python) whose recorded versions differ between the two runs."""
    old, new = baseline.summary.get("versions") or {}, candidate.summary.get("versions") or {}
    return {name: (old.get(name), new.get(name)) for name in sorted(set(old) | set(new))
            if old.get(name) != new.get(name)}


def differing_settings(baseline: FinishedRun, candidate: FinishedRun,
                       include_problems: bool = True) -> dict[str, tuple[Any, Any]]:
    """Settings (``FinishedRun.settings``, the suite aside) that differ between the two runs, as
    {name: (baseline's, candidate's)}. The data file's and the problems' checksums count only where both
    runs recorded them (older runs did not); the problems' not at all when comparing a subset."""
    skipped = {"suite"} | (set() if include_problems else {"suite_sha256"})
    base, cand = baseline.settings, candidate.settings
    checksums = {"data_sha256", "suite_sha256"}
    return {name: (base[name], cand[name]) for name in base
            if name not in skipped and base[name] != cand[name]
            and not (name in checksums and None in (base[name], cand[name]))}


def _fingerprint(record: dict[str, Any]) -> tuple:
    return (record["program"], record["status"], record["passed"], record.get("failed_turn"),
            tuple(t["raw"] for t in record["turns"]))


def _changed_samples(baseline: FinishedRun, candidate: FinishedRun, shared: set[str]) -> dict[str, int]:
    base = {r["unit"]: (r["task_id"], _fingerprint(r)) for r in baseline.samples() if r["task_id"] in shared}
    cand = {r["unit"]: (r["task_id"], _fingerprint(r)) for r in candidate.samples() if r["task_id"] in shared}
    changed: dict[str, int] = {}
    for unit in set(base) | set(cand):
        if base.get(unit) != cand.get(unit):
            problem = (base.get(unit) or cand[unit])[0]
            changed[problem] = changed.get(problem, 0) + 1
    return changed
