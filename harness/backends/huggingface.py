"""Hugging Face transformers backend with its own decoding loop.

Why not ``model.generate``: sampling there draws from one global random stream for the whole batch, so
a row's sample depends on its batch neighbours and on the process count. Here every row has its own
``torch.Generator`` seeded from the unit, rows stop as soon as their stop detector fires (it sees only
the newly decoded text), and finished rows leave the batch and its KV cache.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

from harness.backends.base import GenerationRequest, GenerationResult, SamplingParams
from harness.errors import InputError

log = logging.getLogger(__name__)

DTYPES = {"auto": "auto", "bf16": "bfloat16", "fp16": "float16", "fp32": "float32"}


class IncrementalDecoder:
    """Decodes one row's new tokens without re-decoding the whole output (prefix/read offsets)."""

    def __init__(self, tokenizer: Any):
        self.tokenizer = tokenizer
        self.ids: list[int] = []
        self.prefix_offset = 0
        self.read_offset = 0

    def add(self, token_id: int) -> str:
        self.ids.append(token_id)
        decode = self.tokenizer.decode
        before = decode(self.ids[self.prefix_offset:self.read_offset])
        after = decode(self.ids[self.prefix_offset:])
        if len(after) > len(before) and not after.endswith("\ufffd"):
            self.prefix_offset, self.read_offset = self.read_offset, len(self.ids)
            return after[len(before):]
        return ""


class HuggingFaceBackend:
    requires_reference = False
    name = "huggingface"

    def __init__(self, model: str, device: str = "auto", dtype: str = "auto", trust_remote_code: bool = False,
                 revision: str | None = None, max_length: int | None = None, device_map: str | None = None):
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        self.torch = torch
        self.model_id = model
        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        if device.startswith("cuda") and not torch.cuda.is_available():
            raise InputError("--device cuda asked for, but no CUDA device is available", field="device")
        self.device = torch.device(device)
        if dtype not in DTYPES:
            raise InputError(f"unknown dtype {dtype!r} (choose from {', '.join(DTYPES)})", field="dtype")
        torch_dtype = DTYPES[dtype]
        if torch_dtype == "auto" and self.device.type == "cpu":
            torch_dtype = "float32"
        looks_local = model.startswith((".", "/", "~")) or os.sep in model and Path(model).exists()
        if looks_local and not Path(model).expanduser().exists():
            raise InputError("model path does not exist", file=model, field="model")
        kwargs: dict[str, Any] = {"trust_remote_code": trust_remote_code}
        if revision:
            kwargs["revision"] = revision
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(model, **kwargs)
            if device_map:  # a model too large for one device: accelerate spreads its layers over the GPUs
                kwargs["device_map"] = device_map
            self.model = AutoModelForCausalLM.from_pretrained(model, dtype=torch_dtype, **kwargs)
        except OSError as exc:
            raise InputError(f"cannot load model: {str(exc).splitlines()[0]}", file=model, field="model") from None
        if device_map:
            self.device = self.model.get_input_embeddings().weight.device  # inputs go where the first layer is
        else:
            self.model.to(self.device)
        self.model.eval()
        self.tokenizer.padding_side = "left"
        if getattr(self.tokenizer, "fill_token", None):
            # Code Llama's tokenizer splits any text containing "<FILL_ME>" into prefix and suffix; a
            # conversation's history is plain text (a model may well have written that string).
            self.tokenizer.fill_token = None
        if self.tokenizer.pad_token_id is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        config = self.model.config
        context = max_length or getattr(config, "n_positions", None) or getattr(config, "max_position_embeddings", None)
        self.max_length = int(context or 2048)
        self.eos_ids = {i for i in [self.tokenizer.eos_token_id] if i is not None}

    def identity(self) -> dict[str, Any]:
        config = self.model.config
        return {
            "backend": self.name,
            "model": self.model_id,
            "model_type": config.model_type,
            "architectures": list(getattr(config, "architectures", None) or []),
            "parameters": sum(p.numel() for p in self.model.parameters()),
            "dtype": str(next(self.model.parameters()).dtype).replace("torch.", ""),
            "device": str(self.device),
            "tokenizer": type(self.tokenizer).__name__,
            "vocab_size": len(self.tokenizer),
            "config": config.to_dict(),
        }

    def _encode(self, prompts: list[str], budget: list[int]) -> tuple[list[list[int]], list[bool]]:
        rows, truncated = [], []
        for prompt, new in zip(prompts, budget):
            ids = self.tokenizer(prompt)["input_ids"]
            room = self.max_length - new
            truncated.append(len(ids) > room)
            rows.append(ids[-room:] if len(ids) > room else ids)
        return rows, truncated

    def generate(self, requests: list[GenerationRequest], sampling: SamplingParams) -> list[GenerationResult]:
        torch = self.torch
        budget = [min(r.max_new_tokens, self.max_length - 1) for r in requests]
        rows, truncated = self._encode([r.prompt for r in requests], budget)
        width = max(len(r) for r in rows)
        pad = self.tokenizer.pad_token_id
        input_ids = torch.tensor([[pad] * (width - len(r)) + r for r in rows], device=self.device)
        mask = torch.tensor([[0] * (width - len(r)) + [1] * len(r) for r in rows], device=self.device)
        generators = [torch.Generator(device="cpu").manual_seed(r.seed) for r in requests]
        decoders = [IncrementalDecoder(self.tokenizer) for _ in requests]
        detectors = [r.new_stop_detector() for r in requests]
        alive = list(range(len(requests)))  # original row index of each batch row
        steps = [0] * len(requests)
        cache = None
        step_ids = input_ids
        positions = (mask.cumsum(-1) - 1).clamp(min=0)
        with torch.inference_mode():
            while alive:
                out = self.model(input_ids=step_ids, attention_mask=mask, position_ids=positions,
                                 past_key_values=cache, use_cache=True)
                cache = out.past_key_values
                logits = out.logits[:, -1, :].float()
                chosen = self._pick(logits, [generators[i] for i in alive], sampling)
                keep = []
                for batch_row, row in enumerate(alive):
                    token = chosen[batch_row]
                    steps[row] += 1
                    finished = token in self.eos_ids
                    if not finished:
                        finished = detectors[row].feed(decoders[row].add(token))
                    if not finished and steps[row] < budget[row]:
                        keep.append(batch_row)
                next_tokens = torch.tensor(chosen, device=self.device)[:, None]
                if len(keep) < len(alive):
                    if not keep:
                        break
                    index = torch.tensor(keep, device=self.device)
                    cache.batch_select_indices(index)
                    mask, next_tokens, positions = mask[index], next_tokens[index], positions[index]
                    alive = [alive[i] for i in keep]
                mask = torch.cat([mask, mask.new_ones((len(alive), 1))], dim=1)
                positions = positions[:, -1:] + 1
                step_ids = next_tokens
        results = []
        for row, request in enumerate(requests):
            ids = [t for t in decoders[row].ids if t not in self.eos_ids]
            results.append(GenerationResult(text=self.tokenizer.decode(ids), prompt_tokens=len(rows[row]),
                                            new_tokens=steps[row], prompt_truncated=truncated[row]))
        return results

    def _pick(self, logits: Any, generators: list[Any], sampling: SamplingParams) -> list[int]:
        torch = self.torch
        if sampling.greedy:
            return logits.argmax(dim=-1).tolist()
        probs = torch.softmax(logits / sampling.temperature, dim=-1)
        if sampling.top_p < 1.0:
            sorted_probs, order = probs.sort(dim=-1, descending=True)
            cumulative = sorted_probs.cumsum(dim=-1)
            sorted_probs[(cumulative - sorted_probs) > sampling.top_p] = 0.0
            probs = torch.zeros_like(probs).scatter(-1, order, sorted_probs)
        probs = probs.cpu()
        return [int(torch.multinomial(probs[i], 1, generator=g)) for i, g in enumerate(generators)]
