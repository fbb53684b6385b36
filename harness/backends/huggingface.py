"""Hugging Face transformers backend with its own decoding loop.

Why not ``model.generate``: sampling there draws from one global random stream for the whole batch, so
a row's sample depends on its batch neighbours and on the process count. Here every row has its own
``torch.Generator`` seeded from the unit, rows stop as soon as their stop detector fires (it sees only
the newly decoded text), and finished rows leave the batch and its KV cache.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from harness.backends.base import GenerationRequest, GenerationResult, SamplingParams
from harness.backends.families import INFILLING_SMILEY, detect_family
from harness.backends.hf_loading import DTYPES, load_model
from harness.backends.kv_reuse import ConversationCaches, batched_cache
from harness.backends.phases import PhaseClock
from harness.backends.spec import BackendSpec, Option, choice, integer
from harness.errors import InputError
from harness.generation.truncation import END_OF_MIDDLE, END_OF_SEQUENCE, StopRule

if TYPE_CHECKING:
    from harness.config import RunConfig

log = logging.getLogger(__name__)


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


@dataclass
class _Prefill:
    """The first forward pass's inputs, and what the decoding loop needs to know about them."""

    step_ids: Any
    mask: Any
    positions: Any
    cache: Any
    keys: list[str | None]  # each row's conversation, under which its cache may be kept
    expand: list[int] | None  # after a shared prefill: each row's index among the rows fed, else None
    processed: list[int]  # prompt tokens computed per row


class HuggingFaceBackend:
    requires_reference = False
    name = "huggingface"

    def __init__(self, model: str, device: str = "auto", dtype: str = "auto", trust_remote_code: bool = False,
                 revision: str | None = None, max_length: int | None = None, device_map: str | None = None,
                 reuse_kv: bool = True, max_batch: int | None = None, attn_implementation: str | None = None,
                 load_in: str | None = None):
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
        self.max_batch = max_batch
        self.phases = PhaseClock()

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

    def _encode(self, requests: list[GenerationRequest], budget: list[int]) -> tuple[list[list[int]], list[bool]]:
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
        """Generates in batches of at most ``max_batch`` rows, rows of similar length together to limit
        padding; out of GPU memory, halves the batch and goes on."""
        order = sorted(range(len(requests)), key=lambda i: len(requests[i].prompt) + len(requests[i].suffix or ""))
        done: list[GenerationResult] = []
        while len(done) < len(order):
            size = min(self.max_batch or len(order), len(order) - len(done))
            try:
                done.extend(self._generate_batch([requests[i] for i in order[len(done):len(done) + size]], sampling))
            except self.torch.OutOfMemoryError:
                if size == 1:
                    raise
                self.max_batch = size // 2
                if self.torch.cuda.is_available():
                    self.torch.cuda.empty_cache()
                log.warning("out of memory generating %d rows together; going on with at most %d", size,
                            self.max_batch)
        results: list[GenerationResult] = [GenerationResult(text="")] * len(requests)
        for position, result in zip(order, done):
            results[position] = result
        return results

    def _generate_batch(self, requests: list[GenerationRequest], sampling: SamplingParams) -> list[GenerationResult]:
        clock = self.phases
        clock.start()
        budget = [min(r.max_new_tokens, self.max_length - 1) for r in requests]
        rows, truncated = self._encode(requests, budget)
        clock.lap("tokenize")
        stops = [self.stop_ids(r.stop) for r in requests]
        prefill = self._prefill_inputs(rows, [r.conversation for r in requests])
        chosen_ids = self._decode(requests, sampling, rows, budget, stops, prefill)
        clock.lap("decode")  # dropping finished rows from the cache
        results = []
        for row in range(len(requests)):
            ids = [t for t in chosen_ids[row] if t not in stops[row]]
            results.append(GenerationResult(text=self.tokenizer.decode(ids), prompt_tokens=len(rows[row]),
                                            new_tokens=len(chosen_ids[row]), prompt_truncated=truncated[row],
                                            prompt_tokens_computed=prefill.processed[row]))
        clock.lap("detokenize")
        return results

    def stop_ids(self, rule: StopRule) -> set[int]:
        """The token ids that end a row under ``rule`` (its end-of-text tokens, as this tokenizer has them)."""
        ids = {END_OF_SEQUENCE: self.eos_ids, END_OF_MIDDLE: {self.eot_id} if self.eot_id is not None else set()}
        return set().union(*(ids.get(token, set()) for token in rule.tokens))

    def _prefill_inputs(self, rows: list[list[int]], keys: list[str | None]) -> _Prefill:
        """The first forward pass's inputs: each row's prompt past what its kept cache holds. Rows with the
        same prompt and nothing kept (a problem's samples at their first turn) are encoded once and
        expanded after the prefill."""
        torch = self.torch
        reuse = [self.caches.reusable(key, ids) if self.reuse_kv else (None, 0) for key, ids in zip(keys, rows)]
        first_of: dict[tuple[int, ...] | int, int] = {}
        encoded: list[int] = []  # the rows actually fed in the prefill
        expand: list[int] = []  # each row's index among them
        for i, ids in enumerate(rows):
            share = tuple(ids) if self.reuse_kv and not reuse[i][1] else i
            if share not in first_of:
                first_of[share] = len(encoded)
                encoded.append(i)
            expand.append(first_of[share])
        cache, mask = batched_cache(torch, self.model.config, [reuse[i] for i in encoded], self.device)
        self.caches.forget(keys)
        fed = [rows[i][reuse[i][1]:] for i in encoded]
        width = max(len(ids) for ids in fed)
        pad = self.tokenizer.pad_token_id
        step_ids = torch.tensor([[pad] * (width - len(ids)) + ids for ids in fed], device=self.device)
        new_mask = torch.tensor([[0] * (width - len(ids)) + [1] * len(ids) for ids in fed], device=self.device)
        mask = new_mask if mask is None else torch.cat([mask, new_mask], dim=1)
        positions = (mask.cumsum(-1) - 1).clamp(min=0)[:, -width:]
        processed = [0] * len(rows)
        for i, ids in zip(encoded, fed):
            processed[i] = len(ids)
        return _Prefill(step_ids, mask, positions, cache, keys, expand if len(encoded) < len(rows) else None,
                        processed)

    def _decode(self, requests: list[GenerationRequest], sampling: SamplingParams, rows: list[list[int]],
                budget: list[int], stops: list[set[int]], prefill: _Prefill) -> list[list[int]]:
        """Every row's new token ids. A row leaves the batch (and the cache) at a stop token, when its stop
        detector fires or at its budget; a row whose conversation continues keeps its cache for the next turn."""
        torch, clock, keys = self.torch, self.phases, prefill.keys
        step_ids, mask, positions, cache = prefill.step_ids, prefill.mask, prefill.positions, prefill.cache
        generators = [torch.Generator(device="cpu").manual_seed(r.seed) for r in requests]
        decoders = [IncrementalDecoder(self.tokenizer) for _ in requests]
        detectors = [r.stop.detector() for r in requests]
        alive = list(range(len(requests)))  # original row index of each batch row
        chosen_ids: list[list[int]] = [[] for _ in requests]
        expand, phase = prefill.expand, "prefill"
        with torch.inference_mode():
            while alive:
                out = self.model(input_ids=step_ids, attention_mask=mask, position_ids=positions,
                                 past_key_values=cache, use_cache=True)
                clock.lap(phase)
                phase = "decode"
                cache = out.past_key_values
                logits = out.logits[:, -1, :].float()
                if expand is not None:  # after a shared prefill: one row per request again
                    index = torch.tensor(expand, device=self.device)
                    cache.batch_select_indices(index)
                    logits, mask, positions = logits[index], mask[index], positions[index]
                    expand = None
                chosen = self._pick(logits, [generators[i] for i in alive], sampling)
                clock.lap("sampling")
                keep = []
                for batch_row, row in enumerate(alive):
                    token = chosen[batch_row]
                    chosen_ids[row].append(token)
                    finished = token in stops[row]
                    if not finished:
                        piece = decoders[row].add(token)
                        clock.lap("detokenize")
                        finished = detectors[row].feed(piece)
                        clock.lap("stop_detection")
                    if not finished and len(chosen_ids[row]) < budget[row]:
                        keep.append(batch_row)
                    elif self.reuse_kv and requests[row].continues and keys[row] is not None:
                        # Everything fed so far: the prompt and the new tokens but the last, never fed.
                        self.caches.keep(keys[row], rows[row] + chosen_ids[row][:-1], cache, batch_row,
                                         mask[batch_row].bool())
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
        return chosen_ids

    def _pick(self, logits: Any, generators: list[Any], sampling: SamplingParams) -> list[int]:
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


def build(config: RunConfig, launch_device: str | None) -> HuggingFaceBackend:
    from harness.backends.tiny_models import TINY_MODELS, tiny_model_path

    model = str(tiny_model_path(config.model)) if config.model in TINY_MODELS else config.model
    device = launch_device if config.device == "auto" and launch_device else config.device
    backend = HuggingFaceBackend(model, device=device, dtype=config.dtype,
                                 trust_remote_code=config.trust_remote_code, revision=config.revision,
                                 device_map=config.device_map, reuse_kv=config.kv_reuse,
                                 attn_implementation=config.attn_implementation, load_in=config.load_in,
                                 max_length=config.max_length)
    backend.model_id = config.model
    return backend


BACKEND = BackendSpec("huggingface", "load the model here with transformers (default)", build, options=(
    Option("kv_reuse", bool, True, "re-encode each turn's whole history instead of keeping the KV cache between "
                                   "turns (slower; for checking)"),
    Option("device", str, "auto", "cpu, cuda, cuda:N or auto (default)"),
    Option("dtype", str, "auto", "auto, bf16, fp16 or fp32", check=choice(*DTYPES)),
    Option("device_map", str, None, "'auto': spread a model too large for one GPU over this process's GPUs "
                                    "(accelerate)"),
    Option("revision", str, None, "model revision on the hub"),
    Option("attn_implementation", str, None, "eager, sdpa, flash_attention_2, ... (default: transformers' choice)"),
    Option("load_in", str, None, "quantized weights through bitsandbytes (CUDA)", choices=("8bit", "4bit")),
    Option("max_length", int, None, "context length guard (default: the model's); longer prompts lose their "
                                    "beginning and the sample is marked prompt_truncated",
           check=integer(2, 100_000_000)),
    Option("trust_remote_code", bool, False, "allow model code from the hub"),
))
