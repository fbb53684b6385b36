"""Code Llama's prefix-suffix-middle format on a tiny local Code Llama (SentencePiece tokenizer with the
infilling tokens): exact token layout, generation ending at <EOT>, and a clear error for models that
cannot infill."""

from __future__ import annotations

import json

import torch

from conftest import needs_shared_data, run_cli
from harness.backends.huggingface.backend import HuggingFaceBackend
from harness.backends.huggingface.tiny_models import tiny_model_path
from harness.generation.backend import GenerationRequest, SamplingParams
from harness.generation.truncation import INFILLING_STOP, StopRule
from harness.suites.registry import resolve_suite


def _request(prefix: str, suffix: str | None, tokens: int = 8) -> GenerationRequest:
    return GenerationRequest(prompt=prefix, max_new_tokens=tokens, seed=3, suffix=suffix,
                             stop=INFILLING_STOP if suffix is not None else StopRule())


def test_prompt_layout_is_pre_prefix_suf_suffix_mid():
    backend = HuggingFaceBackend(str(tiny_model_path("tiny-llama")), device="cpu")
    tok = backend.tokenizer
    prefix, suffix = "def add(a, b):\n    ", "\n    return total\n"
    ids = backend.encode(_request(prefix, suffix))
    plain = lambda text: tok(text, add_special_tokens=False)["input_ids"]  # noqa: E731
    # Meta's layout: the suffix is encoded without SentencePiece's implicit leading space.
    no_space = plain(tok.unk_token + suffix)[1:]
    assert tok.convert_ids_to_tokens(no_space)[0] == "<0x0A>" and tok.convert_ids_to_tokens(plain(suffix))[0] == "▁"
    assert ids == [tok.bos_token_id, tok.prefix_id] + plain(prefix) + [tok.suffix_id] + no_space + [tok.middle_id]
    assert tok.convert_ids_to_tokens(ids[:2]) == ["<s>", "▁<PRE>"] and tok.convert_ids_to_tokens(ids[-1:]) == ["▁<MID>"]
    # A history that merely contains the fill marker is plain text, not an infilling request.
    marker = backend.encode(_request("x = '<FILL_ME>' + '<FILL_ME>'\n", None))
    assert tok.prefix_id not in marker and tok.suffix_id not in marker
    assert backend.supports_infilling


def test_generation_stops_at_eot_and_drops_it():
    backend = HuggingFaceBackend(str(tiny_model_path("tiny-llama")), device="cpu")
    eot = backend.tokenizer.eot_id
    # Make <EOT> the only token the model can pick: the middle must end at once, empty.
    only_eot = torch.full((backend.model.config.vocab_size,), -1e9)
    only_eot[eot] = 0.0
    backend.model.lm_head.register_forward_hook(lambda module, args, output: only_eot.expand_as(output))
    result = backend.generate([_request("def f():\n    ", "\n", tokens=8)], SamplingParams(temperature=0))[0]
    assert result.new_tokens == 1 and result.text == ""
    # Under a rule without the end-of-middle token, <EOT> is an ordinary token: generation runs to its budget.
    plain = backend.generate([_request("def f():\n    ", None, tokens=5)], SamplingParams(temperature=0))[0]
    assert plain.new_tokens == 5


def test_models_without_infilling_are_refused_and_infilling_runs_end_to_end(tmp_path):
    data = str(needs_shared_data("infilling/HumanEval-RandomSpanInfillingLight.jsonl.gz"))
    refused = run_cli("run", "--suite", "humaneval-infilling-random-span-light", "--data", data, "--model",
                      "tiny-codegen", "--limit", "2", "--results-dir", str(tmp_path), "--run-name", "cg")
    assert refused.returncode == 2 and "cannot fill in the middle" in refused.stderr
    ok = run_cli("run", "--suite", "humaneval-infilling-random-span-light", "--data", data, "--model", "tiny-llama",
                 "--limit", "2", "--max-new-tokens", "8", "--results-dir", str(tmp_path), "--run-name", "cl")
    assert ok.returncode == 0, ok.stderr[-2000:]
    suite = resolve_suite("humaneval-infilling-random-span-light", data)
    for line in (tmp_path / "cl" / "samples.jsonl").read_text().splitlines():
        record = json.loads(line)
        problem, middle = suite.problem(record["task_id"]), record["turns"][0]["completion"]
        assert record["program"] == problem.prompt + middle + problem.suffix
        assert middle == record["turns"][0]["raw"]  # the middle is used whole, not cut at stop sequences
