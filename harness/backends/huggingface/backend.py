"""Hugging Face transformers backend with its own decoding loop (``hf_decoding``).

Why not ``model.generate``: sampling there draws from one global random stream for the whole batch, so
a row's sample depends on its batch neighbours and on the process count. Here every row has its own
``torch.Generator`` seeded from the unit, rows stop as soon as their stop detector fires (it sees only
the newly decoded text), finished rows leave the batch and its KV cache, and waiting requests take their
place (at most ``max_batch`` rows decode together).
"""

from __future__ import annotations

import logging
from typing import Any

from harness.backends.huggingface.families import INFILLING_SMILEY, detect_family
from harness.backends.huggingface.hf_loading import DTYPES, load_model
from harness.backends.huggingface.kv_reuse import ConversationCaches
from harness.backends.huggingface.phases import PhaseClock
from harness.backends.spec import BackendOptions, BackendSpec, Option, choice, integer
from harness.errors import InputError
from harness.generation.backend import GenerationRequest, GenerationResult, SamplingParams
from harness.generation.truncation import END_OF_MIDDLE, END_OF_SEQUENCE, StopRule

log = logging.getLogger(__name__)


class HuggingFaceBackend:
    requires_reference = False
    name = "huggingface"

    def __init__(self, model: str, device: str = "auto", dtype: str = "auto", trust_remote_code: bool = False,
                 revision: str | None = None, max_length: int | None = None, device_map: str | None = None,
                 reuse_kv: bool = True, max_batch: int | None = None, attn_implementation: str | None = None,
                 load_in: str | None = None, max_rows: int | None = None):
        import torch

        self.torch = torch
        self.model_id = model
        self.tokenizer, self.model, self.device = load_model(
            model, device, dtype, trust_remote_code=trust_remote_code, revision=revision, device_map=device_map,
            attn_implementation=attn_implementation, load_in=load_in)
        self.tokenizer.padding_side = "left"
        if getattr(self.tokenizer, "fill_token", None):
            # Code Llama's tokenizer splits any text containing "<FILL_ME>" into prefix and suffix; a
            # conversation's history is plain text (a model may well have written that string).
            self.tokenizer.fill_token = None
        if self.tokenizer.pad_token_id is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        # Code Llama (7B and 13B, base and Instruct) fills in the middle: <s> <PRE> prefix <SUF>suffix <MID>,
        # and ends the middle with <EOT>.
        self.eot_id = getattr(self.tokenizer, "eot_id", None)
        config = self.model.config
        self.family = detect_family(model, config, self.tokenizer)
        self.supports_infilling = self.family.infilling
        context = max_length or getattr(config, "n_positions", None) or getattr(config, "max_position_embeddings", None)
        self.max_length = int(context or 2048)
        self.eos_ids = {i for i in [self.tokenizer.eos_token_id] if i is not None}
        # Instruct/chat models answer through their chat template, and do so by default.
        self.supports_chat = self.prefers_chat = self.family.chat_template
        # Keys and values kept between a conversation's turns (and a shared first prompt encoded once).
        self.reuse_kv = reuse_kv
        self.caches = ConversationCaches()
        # Rows decoded together at most (None: all of a call's requests, i.e. the run's batch group);
        # max_batch is set only after running out of memory.
        self.max_rows = max_rows
        self.max_batch = max_batch
        self.phases = PhaseClock()
        self.gguf: dict[str, str] | None = None  # the GGUF file the checkpoint was converted from (build sets it)

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
            "family": self.family.as_dict(),
            "attn_implementation": getattr(config, "_attn_implementation", None),
            "config": config.to_dict(),
            **({"gguf": self.gguf} if self.gguf else {}),
        }

    def encode(self, request: GenerationRequest) -> list[int]:
        """The prompt's token ids: the chat template's rendering of the messages (the template writes <s>
        itself), the infilling layout when the request has a suffix, or plain text with the tokenizer's
        own special tokens (Code Llama: <s> in front; CodeGen: none)."""
        if request.messages is not None:
            if not self.supports_chat:
                raise InputError(f"{self.model_id} has no chat template; use --prompt-format base",
                                 file=self.model_id, field="prompt_format")
            text = self.tokenizer.apply_chat_template(request.messages, tokenize=False, add_generation_prompt=True)
            return self.tokenizer(text, add_special_tokens=False)["input_ids"]
        if request.suffix is None:
            return self.tokenizer(request.prompt)["input_ids"]
        if not self.supports_infilling:
            raise InputError(f"{self.model_id} cannot fill in the middle (its tokenizer has no <PRE>/<SUF>/<MID>/"
                             "<EOT> tokens); infilling needs a model such as codellama/CodeLlama-7b-hf",
                             file=self.model_id, field="model")
        tok = self.tokenizer
        prefix = tok(request.prompt, add_special_tokens=False)["input_ids"]
        suffix = self._encode_infilling(request.suffix)
        # Meta's infilling_prompt_tokens (facebookresearch/codellama, llama/generation.py), token for token.
        if request.suffix_first:  # SPM: <s> <PRE> <SUF>{suffix} <MID> {prefix}
            return [tok.bos_token_id, tok.prefix_id, tok.suffix_id] + suffix + [tok.middle_id] + prefix
        return [tok.bos_token_id, tok.prefix_id] + prefix + [tok.suffix_id] + suffix + [tok.middle_id]

    def _encode_infilling(self, text: str) -> list[int]:
        """Meta's ``encode_infilling``: the suffix without SentencePiece's implicit leading space, encoded as
        ``"☺" + text`` with its first two tokens (the space and the smiley) dropped. (The fast tokenizer's own
        suffix handling adds a space.) A tokenizer on which the trick does not give those two tokens is refused
        rather than losing a token of the suffix."""
        tok = self.tokenizer
        ids = tok(INFILLING_SMILEY + text, add_special_tokens=False)["input_ids"]
        if tok.convert_ids_to_tokens(ids[:2]) != ["▁", INFILLING_SMILEY]:
            raise InputError(f"cannot encode an infilling suffix as Code Llama's reference does with "
                             f"{type(tok).__name__} ('{INFILLING_SMILEY}' is not a piece of its own)",
                             file=self.model_id, field="model")
        return ids[2:]

    def encode_rows(self, requests: list[GenerationRequest], budget: list[int]) -> tuple[list[list[int]], list[bool]]:
        rows, truncated = [], []
        for request, new in zip(requests, budget):
            ids = self.encode(request)
            room = self.max_length - new
            truncated.append(len(ids) > room)
            if len(ids) > room:  # keep the end; an infilling prompt keeps its <s> <PRE> (SPM: <SUF>) head too
                head = ids[:3 if request.suffix_first else 2] if request.suffix is not None else []
                ids = head + ids[len(ids) - room + len(head):]
            rows.append(ids)
        return rows, truncated

    def generate(self, requests: list[GenerationRequest], sampling: SamplingParams) -> list[GenerationResult]:
        """At most ``max_rows`` (and ``max_batch``) rows decode together, admitted shortest prompt first to
        limit padding; a finished row's place goes to the next waiting request. Out of GPU memory, the rows
        not yet finished start again with half as many at once."""
        from harness.backends.huggingface.hf_decoding import RefillLoop  # 5 ms: not at every command's start

        order = sorted(range(len(requests)), key=lambda i: len(requests[i].prompt) + len(requests[i].suffix or ""))
        results: dict[int, GenerationResult] = {}
        while len(results) < len(requests):
            todo = [i for i in order if i not in results]
            cap = min(self.max_rows or len(todo), self.max_batch or len(todo), len(todo))
            loop = RefillLoop(self, requests, sampling, cap)
            try:
                loop.run(todo)
            except self.torch.OutOfMemoryError:
                if cap == 1:
                    raise
                self.max_batch = cap // 2
                if self.torch.cuda.is_available():
                    self.torch.cuda.empty_cache()
                log.warning("out of memory generating %d rows together; going on with at most %d", cap,
                            self.max_batch)
            results.update(loop.results)
        return [results[i] for i in range(len(requests))]

    def stop_ids(self, rule: StopRule) -> set[int]:
        """The token ids that end a row under ``rule`` (its end-of-text tokens, as this tokenizer has them)."""
        ids = {END_OF_SEQUENCE: self.eos_ids, END_OF_MIDDLE: {self.eot_id} if self.eot_id is not None else set()}
        return set().union(*(ids.get(token, set()) for token in rule.tokens))

    def pick(self, logits: Any, generators: list[Any], sampling: SamplingParams) -> list[int]:
        """Greedy, or inverse-CDF sampling on the device: each row's uniform draw comes from its own
        generator, so a row's sample does not depend on its batch neighbours."""
        torch = self.torch
        if sampling.greedy:
            return logits.argmax(dim=-1).tolist()
        probs = torch.softmax(logits / sampling.temperature, dim=-1).double()
        order = None
        if sampling.top_p < 1.0:
            probs, order = probs.sort(dim=-1, descending=True)
            probs[(probs.cumsum(dim=-1) - probs) > sampling.top_p] = 0.0
        cdf = probs.cumsum(dim=-1)
        draws = torch.cat([torch.rand(1, generator=g, dtype=torch.float64) for g in generators]).to(cdf.device)
        index = torch.searchsorted(cdf, (draws * cdf[:, -1])[:, None], right=True).clamp(max=cdf.shape[-1] - 1)
        tokens = index if order is None else order.gather(-1, index)
        return tokens[:, 0].tolist()


def build(options: BackendOptions, launch_device: str | None) -> HuggingFaceBackend:
    from harness.backends.huggingface.checkpoints import resolve

    checkpoint = resolve(options.model, options.gguf_file, options.revision, options.trust_remote_code)
    device = launch_device if options.device == "auto" and launch_device else options.device
    backend = HuggingFaceBackend(checkpoint.path, device=device, dtype=options.dtype,
                                 trust_remote_code=options.trust_remote_code,
                                 revision=None if checkpoint.gguf else options.revision,
                                 device_map=options.device_map, reuse_kv=options.kv_reuse,
                                 attn_implementation=options.attn_implementation, load_in=options.load_in,
                                 max_length=options.max_length, max_rows=options.max_rows)
    backend.model_id = options.model
    backend.gguf = checkpoint.gguf.identity() if checkpoint.gguf else None
    return backend


BACKEND = BackendSpec("huggingface", "load the model here with transformers (default)", build, options=(
    Option("max_rows", int, None, "rows decoded together at most (default: the whole batch group); with a "
                                  "--batch-size above it, waiting conversations take the rows that finish",
           check=integer(1, 1_000_000), recorded_after="batch_size"),
    Option("kv_reuse", bool, True, "re-encode each turn's whole history instead of keeping the KV cache between "
                                   "turns (slower; for checking)"),
    Option("device", str, "auto", "cpu, cuda, cuda:N or auto (default)"),
    Option("dtype", str, "auto", "auto, bf16, fp16 or fp32", check=choice(*DTYPES)),
    Option("device_map", str, None, "'auto': spread a model too large for one GPU over this process's GPUs "
                                    "(accelerate)"),
    Option("revision", str, None, "model revision on the hub"),
    Option("gguf_file", str, None, "a GGUF file in --model's folder or hub repository (--model FILE.gguf needs "
                                   "none); converted once into a plain checkpoint cached under HARNESS_CACHE"),
    Option("attn_implementation", str, None, "eager, sdpa, flash_attention_2, ... (default: transformers' choice)",
           recorded_after="max_repairs"),
    Option("load_in", str, None, "quantized weights through bitsandbytes (CUDA)", choices=("8bit", "4bit")),
    Option("max_length", int, None, "context length guard (default: the model's); longer prompts lose their "
                                    "beginning and the sample is marked prompt_truncated",
           check=integer(2, 100_000_000)),
    Option("trust_remote_code", bool, False, "allow model code from the hub"),
))
