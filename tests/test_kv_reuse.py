"""KV-cache reuse across turns and shared first prompts: the same completions as re-encoding every turn.

The tiny models are random, so their top two logits are often nearly tied; computing attention over a
kept cache plus new tokens sums in a different order than over the whole history, which in float32 can
flip such a tie. The identity tests therefore run the models in float64, where the only differences left
are those of the tokens fed, which is what reuse must not change.
"""

from __future__ import annotations

import json

import pytest
import torch

from conftest import run_cli
from harness.backends.huggingface.backend import HuggingFaceBackend
from harness.backends.huggingface.kv_reuse import common_prefix_length
from harness.backends.huggingface.tiny_models import tiny_model_path
from harness.generation.backend import GenerationRequest, SamplingParams
from harness.generation.conversations import ConversationGenerator, batch_groups, units_for
from harness.suites.problems import MULTI_TURN
from harness.suites.registry import resolve_suite

FAMILIES = ["tiny-codegen", "tiny-llama"]


def _backend(model: str, reuse: bool) -> HuggingFaceBackend:
    backend = HuggingFaceBackend(str(tiny_model_path(model)), device="cpu", reuse_kv=reuse)
    backend.model.to(torch.float64)
    return backend


def _run(backend: HuggingFaceBackend, sampling: SamplingParams, n: int, problems: int, batch: int):
    suite = resolve_suite("core", None)
    chosen = [p for p in suite.problems if p.kind == MULTI_TURN][:problems]
    generator = ConversationGenerator(backend, sampling, 7, suite.program_prefix, max_new_tokens=48)
    return [c for group in batch_groups(units_for(chosen, n), batch) for c in generator.run_group(group)]


@pytest.mark.parametrize("model", FAMILIES)
def test_greedy_turns_identical_with_and_without_reuse(model):
    plain = _run(_backend(model, reuse=False), SamplingParams(temperature=0), n=2, problems=8, batch=6)
    reusing_backend = _backend(model, reuse=True)
    reused = _run(reusing_backend, SamplingParams(temperature=0), n=2, problems=8, batch=6)
    turns = [(a.unit.uid, i, ta.raw, tb.raw) for a, b in zip(plain, reused) for i, (ta, tb) in
             enumerate(zip(a.turns, b.turns))]
    assert len(turns) >= 30
    differing = [(uid, i) for uid, i, ra, rb in turns if ra != rb]
    assert not differing
    assert [c.program for c in plain] == [c.program for c in reused]
    total = sum(t.prompt_tokens for c in reused for t in c.turns)
    computed = sum(t.prompt_tokens_computed for c in reused for t in c.turns)
    assert sum(t.prompt_tokens_computed for c in plain for t in c.turns) == total
    # Later turns feed only their new tokens and a problem's samples share their first prompt.
    assert computed < total / 2
    assert len(reusing_backend.caches) == 0  # nothing outlives its conversation


@pytest.mark.parametrize("model", FAMILIES)
def test_sampled_turns_identical_with_and_without_reuse(model):
    sampling = SamplingParams(temperature=0.8, top_p=0.95)
    plain = _run(_backend(model, reuse=False), sampling, n=3, problems=3, batch=9)
    reused = _run(_backend(model, reuse=True), sampling, n=3, problems=3, batch=9)
    assert [[t.raw for t in c.turns] for c in plain] == [[t.raw for t in c.turns] for c in reused]
    # Samples of one conversation really differ, so sharing their first prompt did not tie them together.
    assert len({c.turns[0].raw for c in reused[:3]}) > 1


@pytest.mark.parametrize("model", FAMILIES)
def test_decoding_loop_matches_transformers_generate(model):
    """The plain path itself equals `model.generate` (greedy, one row, no padding) on each turn's prompt."""
    backend = _backend(model, reuse=False)
    conversations = _run(backend, SamplingParams(temperature=0), n=1, problems=2, batch=2)
    checked = 0
    for conversation in conversations:
        history = resolve_suite("core", None).program_prefix
        for turn in conversation.turns:
            prompt = history + turn.prompt
            ids = backend.tokenizer(prompt, return_tensors="pt")["input_ids"]
            out = backend.model.generate(ids, attention_mask=torch.ones_like(ids), do_sample=False,
                                         max_new_tokens=turn.new_tokens, pad_token_id=backend.tokenizer.pad_token_id)
            text = backend.tokenizer.decode(out[0, ids.shape[1]:])
            assert text.startswith(turn.raw)
            history = prompt + turn.completion + "\n\n"
            checked += 1
    assert checked >= 4


def _prompted(prompt: str, key: str, continues: bool) -> GenerationRequest:
    return GenerationRequest(prompt=prompt, max_new_tokens=6, seed=1, conversation=key, continues=continues)


def test_next_turn_feeds_only_tokens_past_the_common_prefix():
    backend = _backend("tiny-codegen", reuse=True)
    first = backend.generate([_prompted("# add two numbers\n", "c0", True)], SamplingParams(temperature=0))[0]
    second_prompt = "# add two numbers\n" + first.text + "\n# print it\n"
    ids = backend.tokenizer(second_prompt)["input_ids"]
    kept = backend.caches._rows["c0"].ids
    second = backend.generate([_prompted(second_prompt, "c0", False)], SamplingParams(temperature=0))[0]
    assert second.prompt_tokens == len(ids)
    assert second.prompt_tokens_computed == len(ids) - common_prefix_length(kept, ids)
    assert second.prompt_tokens_computed < len(ids)
    assert len(backend.caches) == 0  # the last turn keeps nothing


def test_out_of_memory_halves_the_batch_and_gives_the_same_answers():
    """A forward hook raises torch's real OutOfMemoryError whenever more than two rows are fed at once, as a
    GPU would; generation goes on in halves and answers exactly as with room to spare."""
    requests = [_prompted(f"# step {i}\nx = {i}\n", f"c{i}", False) for i in range(6)]
    roomy = _backend("tiny-llama", reuse=True).generate(requests, SamplingParams(temperature=0))
    backend = _backend("tiny-llama", reuse=True)

    def refuse_big_batches(module, args, kwargs):
        if kwargs["input_ids"].shape[0] > 2:
            raise torch.OutOfMemoryError("CUDA out of memory (simulated by the test's hook)")

    backend.model.register_forward_pre_hook(refuse_big_batches, with_kwargs=True)
    tight = backend.generate(requests, SamplingParams(temperature=0))
    assert [r.text for r in tight] == [r.text for r in roomy]
    assert backend.max_batch == 1 or backend.max_batch == 2


def test_cli_batch_size_auto_and_no_kv_reuse(tmp_path):
    """End to end: `auto` cuts the work into groups of 64 conversations generated together (a fixed size
    gives its own), and --no-kv-reuse computes every prompt token (identity of the completions is shown in
    float64 above; these runs are float32)."""
    from harness.generation.conversations import AUTO_BATCH_SIZE

    core = resolve_suite("core", None)
    expected_units = [f"{p.id}/case{c}/sample{s}" for p in core.problems[:12] for c in range(p.num_cases)
                      for s in range(4)]
    assert len(expected_units) > 2 * AUTO_BATCH_SIZE  # at least three groups
    outputs = {}
    for name, extra in (("reuse", ["--batch-size", "auto"]), ("plain", ["--no-kv-reuse", "--batch-size", "16"])):
        result = run_cli("run", "--model", "tiny-codegen", "--temperature", "0", "--limit", "12", "--n", "4",
                         "--max-new-tokens", "8", "--results-dir", str(tmp_path), "--run-name", name,
                         "--dtype", "fp32", *extra)
        assert result.returncode == 0, result.stderr
        records = [json.loads(line) for line in (tmp_path / name / "samples.jsonl").read_text().splitlines()]
        assert [r["unit"] for r in records] == expected_units  # every conversation once, in canonical order
        outputs[name] = records, json.loads((tmp_path / name / "summary.json").read_text())
    (auto_records, reuse), (fixed_records, plain) = outputs["reuse"], outputs["plain"]
    assert [r["group"] for r in auto_records] == [i // 64 for i in range(len(expected_units))]
    assert [r["group"] for r in fixed_records] == [i // 16 for i in range(len(expected_units))]
    assert reuse["config"]["batch_size"] == "auto" and plain["config"]["kv_reuse"] is False
    assert "max_batch" not in reuse["timings"]  # nothing ran out of memory, so no batch was halved
    assert reuse["timings"]["prompt_tokens_computed"] < plain["timings"]["prompt_tokens_computed"]
    assert plain["timings"]["prompt_tokens_computed"] == plain["timings"]["prompt_tokens"]
