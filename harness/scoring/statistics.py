"""Confidence intervals and paired tests for pass@k, by bootstrap over problems (seeded).

Problems are the unit of resampling: a benchmark's problems are a sample from the space of problems,
and that is where most of the uncertainty of a pass@k number lies.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

DEFAULT_RESAMPLES = 2000
DEFAULT_SEED = 20240101


@dataclass(frozen=True)
class Interval:
    estimate: float
    low: float
    high: float

    def as_dict(self) -> dict[str, float]:
        return {"estimate": self.estimate, "low": self.low, "high": self.high}


def bootstrap_mean(values: list[float], confidence: float = 0.95, resamples: int = DEFAULT_RESAMPLES,
                   seed: int = DEFAULT_SEED) -> Interval:
    """Percentile bootstrap interval of the mean of per-problem scores."""
    data = np.asarray(values, dtype=float)
    if data.size == 0:
        return Interval(float("nan"), float("nan"), float("nan"))
    rng = np.random.default_rng(seed)
    means = data[rng.integers(0, data.size, size=(resamples, data.size))].mean(axis=1)
    tail = (1 - confidence) / 2
    return Interval(float(data.mean()), float(np.quantile(means, tail)), float(np.quantile(means, 1 - tail)))


@dataclass(frozen=True)
class PairedComparison:
    problems: int
    baseline: float
    candidate: float
    difference: Interval  # candidate - baseline, two-sided interval at the requested confidence
    p_value: float  # one-sided: the chance of a difference this low if the candidate lost no more than max_drop
    max_drop: float
    alpha: float

    @property
    def regressed(self) -> bool:
        return self.p_value < self.alpha


def paired_bootstrap(baseline: list[float], candidate: list[float], max_drop: float = 0.0, alpha: float = 0.05,
                     resamples: int = DEFAULT_RESAMPLES, seed: int = DEFAULT_SEED) -> PairedComparison:
    """Compare per-problem scores of two runs on the same problems (paired by position).

    The p-value is that of the one-sided test of "the candidate is worse by more than ``max_drop``": the
    share of bootstrap means of the per-problem differences that are at or above ``-max_drop`` (a shifted
    percentile bootstrap). Identical runs give 1; a drop far beyond the noise gives about 0.
    """
    base = np.asarray(baseline, dtype=float)
    cand = np.asarray(candidate, dtype=float)
    if base.shape != cand.shape or base.size == 0:
        raise ValueError("paired comparison needs the same, non-empty set of problems")
    diffs = cand - base
    rng = np.random.default_rng(seed)
    means = diffs[rng.integers(0, diffs.size, size=(resamples, diffs.size))].mean(axis=1)
    tail = alpha / 2
    interval = Interval(float(diffs.mean()), float(np.quantile(means, tail)), float(np.quantile(means, 1 - tail)))
    p_value = float(np.mean(means >= -max_drop - 1e-12))
    return PairedComparison(problems=int(diffs.size), baseline=float(base.mean()), candidate=float(cand.mean()),
                            difference=interval, p_value=p_value, max_drop=max_drop, alpha=alpha)
