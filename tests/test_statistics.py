"""Bootstrap intervals and the paired test, checked against closed forms and known cases."""

from __future__ import annotations

import math

import pytest

from harness.scoring.statistics import bootstrap_mean, paired_bootstrap


def test_bootstrap_interval_of_a_known_proportion():
    # 400 problems, 30% solved: the normal approximation gives 0.3 +- 1.96 * sqrt(0.3 * 0.7 / 400).
    values = [1.0] * 120 + [0.0] * 280
    interval = bootstrap_mean(values, resamples=4000, seed=1)
    half_width = 1.96 * math.sqrt(0.3 * 0.7 / 400)
    assert interval.estimate == pytest.approx(0.3)
    assert interval.low == pytest.approx(0.3 - half_width, abs=0.01)
    assert interval.high == pytest.approx(0.3 + half_width, abs=0.01)


def test_bootstrap_is_seeded_and_degenerate_cases_are_exact():
    values = [0.0, 0.5, 1.0, 1.0, 0.25]
    assert bootstrap_mean(values, seed=3) == bootstrap_mean(values, seed=3)
    constant = bootstrap_mean([1.0] * 50)
    assert (constant.low, constant.estimate, constant.high) == (1.0, 1.0, 1.0)


def test_identical_runs_have_p_value_one():
    scores = [1.0, 0.0, 0.5, 1.0, 0.0] * 20
    result = paired_bootstrap(scores, list(scores))
    assert result.p_value == 1.0 and not result.regressed
    assert result.difference.estimate == 0.0


def test_large_drop_is_flagged_and_small_noise_is_not():
    baseline = [1.0] * 60 + [0.0] * 40
    dropped = [0.0] * 40 + [1.0] * 20 + [0.0] * 40  # 40 problems lost
    result = paired_bootstrap(baseline, dropped)
    assert result.regressed and result.p_value < 0.001
    assert result.difference.estimate == pytest.approx(-0.4)
    assert result.difference.high < 0
    noisy = [0.0] + [1.0] * 59 + [1.0] + [0.0] * 39  # one lost, one gained
    assert not paired_bootstrap(baseline, noisy).regressed


def test_max_drop_tolerates_a_small_real_drop():
    baseline = [1.0] * 100
    candidate = [0.0] * 10 + [1.0] * 90  # a 10-point drop
    assert paired_bootstrap(baseline, candidate, max_drop=0.0).regressed
    assert not paired_bootstrap(baseline, candidate, max_drop=0.15).regressed
