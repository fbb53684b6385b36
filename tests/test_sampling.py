"""The backend's sampler: the right distribution, nucleus cut-off, and rows independent of each other."""

from __future__ import annotations

import math

import torch

from harness.backends.huggingface.backend import HuggingFaceBackend
from harness.backends.huggingface.tiny_models import tiny_model_path
from harness.generation.backend import SamplingParams

PROBS = [0.5, 0.3, 0.15, 0.05]


def _backend() -> HuggingFaceBackend:
    return HuggingFaceBackend(str(tiny_model_path("tiny-codegen")), device="cpu")


def _draw(backend: HuggingFaceBackend, rows: int, sampling: SamplingParams, seed0: int = 0) -> list[int]:
    logits = torch.tensor([[math.log(p) for p in PROBS]] * rows)
    generators = [torch.Generator().manual_seed(seed0 + i) for i in range(rows)]
    return backend.pick(logits, generators, sampling)


def test_frequencies_follow_the_softmax_at_temperature_one():
    drawn = _draw(_backend(), 8000, SamplingParams(temperature=1.0, top_p=1.0))
    for token, p in enumerate(PROBS):
        share = drawn.count(token) / len(drawn)
        assert abs(share - p) < 4 * math.sqrt(p * (1 - p) / len(drawn)), (token, share, p)


def test_top_p_keeps_the_smallest_set_reaching_p_renormalised():
    drawn = _draw(_backend(), 8000, SamplingParams(temperature=1.0, top_p=0.7))
    assert set(drawn) == {0, 1}  # 0.5 < 0.7 <= 0.5 + 0.3: tokens 2 and 3 are cut
    assert abs(drawn.count(0) / len(drawn) - 0.5 / 0.8) < 0.03


def test_a_row_draws_the_same_token_whatever_its_neighbours():
    backend = _backend()
    sampling = SamplingParams(temperature=1.0, top_p=0.95)
    alone = [_draw(backend, 1, sampling, seed0=s)[0] for s in range(40)]
    together = _draw(backend, 40, sampling)
    assert alone == together
    assert len(set(together)) > 1
