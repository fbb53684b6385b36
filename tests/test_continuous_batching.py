"""Waiting requests take the rows that finish (``harness.backends.huggingface.hf_decoding``), and every reply is still
the one the request gets decoded alone.

The models run in float64 (as in test_kv_reuse): the random tiny models' top logits are often nearly tied,
and padding changes the summation order, which float32 may not survive.
"""

from __future__ import annotations

import pytest
import torch

from harness.backends.huggingface.backend import HuggingFaceBackend
from harness.backends.huggingface.tiny_models import tiny_model_path
from harness.generation.backend import GenerationRequest, SamplingParams
from harness.generation.conversations import ConversationGenerator, batch_groups, units_for
from harness.suites.problems import MULTI_TURN
from harness.suites.registry import resolve_suite

GREEDY = SamplingParams(temperature=0)
# Replies that end at different lengths (their budgets), so rows free up at different steps.
BUDGETS = [23, 3, 5, 17, 4, 9, 12]


def _backend(model: str, rows: int | None = None, reuse: bool = True) -> HuggingFaceBackend:
    backend = HuggingFaceBackend(str(tiny_model_path(model)), device="cpu", reuse_kv=reuse)
    backend.max_rows = rows  # as a run sets it from --batch-size
    backend.model.to(torch.float64)
    return backend


def _requests() -> list[GenerationRequest]:
    return [GenerationRequest(prompt=f"# step {i}\n" + "x = 1\n" * (i % 3) + f"def f{i}(a):\n", max_new_tokens=budget,
                              seed=100 + i) for i, budget in enumerate(BUDGETS)]


@pytest.mark.parametrize("model", ["tiny-codegen", "tiny-llama"])
def test_freed_rows_are_refilled_and_replies_equal_unbatched(model):
    backend = _backend(model, rows=3)
    passes: list[tuple[int, int]] = []  # (rows, tokens fed per row) of every forward pass
    backend.model.register_forward_pre_hook(
        lambda module, args, kwargs: passes.append(tuple(kwargs["input_ids"].shape)), with_kwargs=True)
    batched = backend.generate(_requests(), GREEDY)
    last_prefill = max(i for i, (_, width) in enumerate(passes) if width > 1)
    steps_before = [rows for rows, width in passes[:last_prefill] if width == 1]
    # While requests wait, no decoding step runs with a free row: a finished row's place is taken at once.
    assert steps_before and all(rows == 3 for rows in steps_before)
    # Each row is fed exactly its reply's tokens but the last: no step is spent on finished rows.
    assert sum(rows for rows, width in passes if width == 1) == sum(r.new_tokens - 1 for r in batched)
    alone = _backend(model)
    for request, result in zip(_requests(), batched):
        assert result.text == alone.generate([request], GREEDY)[0].text
    assert all(0 < r.new_tokens <= budget for r, budget in zip(batched, BUDGETS))


def test_sampled_replies_do_not_depend_on_refill():
    sampling = SamplingParams(temperature=0.8, top_p=0.95)
    refilled = _backend("tiny-llama", rows=2).generate(_requests(), sampling)
    together = _backend("tiny-llama").generate(_requests(), sampling)
    assert [r.text for r in refilled] == [r.text for r in together]


def test_multi_turn_with_kv_reuse_and_refill_equals_plain_re_encoding():
    """Conversations whose turns are decoded 4 rows at a time, refilled, with caches kept between turns,
    answer as re-encoding every turn's history with all rows at once."""
    suite = resolve_suite("core", None)
    chosen = [p for p in suite.problems if p.kind == MULTI_TURN][:2]

    def run(backend: HuggingFaceBackend):
        generator = ConversationGenerator(backend, GREEDY, 7, suite.program_prefix, max_new_tokens=12)
        return [c for group in batch_groups(units_for(chosen, 2), 8) for c in generator.run_group(group)]

    refilling = _backend("tiny-codegen", rows=3)
    reused, plain = run(refilling), run(_backend("tiny-codegen", reuse=False))
    assert [[t.raw for t in c.turns] for c in reused] == [[t.raw for t in c.turns] for c in plain]
    computed = sum(t.prompt_tokens_computed for c in reused for t in c.turns)
    assert computed < sum(t.prompt_tokens for c in reused for t in c.turns) / 2
    assert len(refilling.caches) == 0


def test_max_rows_option_reaches_the_backend(capsys):
    """``--max-rows`` is a Hugging Face backend option: recorded with the config, given to the backend; a
    value below 1 is refused with one line."""
    from conftest import refused_in_process
    from harness.backends.huggingface.backend import build
    from harness.config import build_config

    assert "max_rows" in refused_in_process(["run", "--model", "tiny-llama", "--max-rows", "0"], capsys)
    config = build_config({}, {"model": "tiny-llama", "max_rows": 2, "device": "cpu"})
    assert config.as_dict()["max_rows"] == 2
    assert build(config, None).max_rows == 2
