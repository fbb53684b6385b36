"""The Hugging Face backend's decoding loop, with waiting requests taking the rows that finish.

At most ``cap`` rows decode together. When a row finishes (a stop token, its stop detector, its budget),
the next waiting request is prefilled and joins the running batch at the next step, instead of the batch
waiting for its longest reply before the next batch starts (continuous batching). Why not transformers'
``generate_batch``: every row here has its own ``torch.Generator`` (a sample does not depend on its
neighbours), its own stop detector fed the newly decoded text, and its KV cache kept between a
conversation's turns (``kv_reuse``).

Joining: the newcomers' prompts are prefilled on a forward pass of their own, then their keys and values
and the running batch's are left-padded to a common width and concatenated. When rows leave, cache columns
that are padding in every remaining row are cut. Padding is masked out, so each row gets the tokens it
would get decoded alone (up to the summation order of floating point).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Any, Protocol

from harness.backends.huggingface.kv_reuse import ConversationCaches, batched_cache
from harness.backends.huggingface.phases import PhaseClock
from harness.generation.backend import GenerationRequest, GenerationResult, SamplingParams
from harness.generation.truncation import StopRule


class DecodingModel(Protocol):
    """What the loop drives: the loaded model and tokenizer and the backend's own choices, declared here so
    that this module needs nothing of the backend that owns the loop (``huggingface.HuggingFaceBackend``)."""

    torch: Any
    model: Any
    tokenizer: Any
    device: Any
    max_length: int
    reuse_kv: bool
    caches: ConversationCaches
    phases: PhaseClock

    def encode_rows(self, requests: list[GenerationRequest],
                    budget: list[int]) -> tuple[list[list[int]], list[bool]]: ...

    def stop_ids(self, rule: StopRule) -> set[int]: ...

    def pick(self, logits: Any, generators: list[Any], sampling: SamplingParams) -> list[int]: ...


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
class Row:
    """One request's decoding state."""

    request: GenerationRequest
    ids: list[int]  # the prompt's token ids (after truncation)
    truncated: bool
    budget: int
    stops: set[int]
    generator: Any
    decoder: IncrementalDecoder
    detector: Any
    chosen: list[int] = field(default_factory=list)
    computed: int = 0  # prompt tokens the model computed (the rest came from kept or shared caches)


@dataclass
class RunningBatch:
    """The rows decoding together. Between forward passes ``mask`` is as wide as the cache (1 where a
    position holds a real token) and every row has one chosen token not yet fed (``pending``)."""

    rows: list[int]  # the request index of each batch row
    cache: Any
    mask: Any
    positions: Any  # [rows, 1]: the position of each row's pending token
    pending: Any  # [rows, 1]

    def keep(self, torch: Any, keep: list[int]) -> None:
        """Only the batch rows ``keep`` stay; columns no remaining row uses are cut."""
        index = torch.tensor(keep, device=self.mask.device)
        self.cache.batch_select_indices(index)
        self.mask, self.positions, self.pending = self.mask[index], self.positions[index], self.pending[index]
        self.rows = [self.rows[i] for i in keep]
        start = int(self.mask.any(dim=0).int().argmax())  # the first column some row uses
        if start:
            self.mask = self.mask[:, start:]
            for layer in self.cache.layers:
                if layer.keys is not None:
                    layer.keys, layer.values = layer.keys[:, :, start:], layer.values[:, :, start:]

    def join(self, torch: Any, other: RunningBatch) -> None:
        """Adds ``other``'s rows below these, both left-padded to the wider cache."""
        width = max(self.mask.shape[1], other.mask.shape[1])
        for mine, theirs in zip(self.cache.layers, other.cache.layers):
            if mine.keys is not None:
                mine.keys = torch.cat([_left_pad(torch, mine.keys, width), _left_pad(torch, theirs.keys, width)])
                mine.values = torch.cat([_left_pad(torch, mine.values, width),
                                         _left_pad(torch, theirs.values, width)])
        self.mask = torch.cat([_left_pad(torch, self.mask, width, dim=1), _left_pad(torch, other.mask, width, dim=1)])
        self.positions = torch.cat([self.positions, other.positions])
        self.pending = torch.cat([self.pending, other.pending])
        self.rows += other.rows


def _left_pad(torch: Any, tensor: Any, width: int, dim: int = 2) -> Any:
    missing = width - tensor.shape[dim]
    if not missing:
        return tensor
    shape = list(tensor.shape)
    shape[dim] = missing
    return torch.cat([tensor.new_zeros(shape), tensor], dim=dim)


class RefillLoop:
    """Decodes ``requests`` (indices ``todo``, in that order of admission) with at most ``cap`` rows at once,
    putting each finished row's result into ``results``."""

    def __init__(self, backend: DecodingModel, requests: list[GenerationRequest], sampling: SamplingParams,
                 cap: int):
        self.backend, self.torch, self.clock = backend, backend.torch, backend.phases
        self.requests, self.sampling, self.cap = requests, sampling, cap
        self.rows: dict[int, Row] = {}
        self.results: dict[int, GenerationResult] = {}

    def run(self, todo: list[int]) -> None:
        self.clock.start()
        self._encode(todo)
        self.clock.lap("tokenize")
        waiting, batch = deque(todo), None
        with self.torch.inference_mode():
            while waiting or batch is not None:
                room = self.cap - (len(batch.rows) if batch is not None else 0)
                if waiting and room > 0:
                    newcomers = self._admit([waiting.popleft() for _ in range(min(room, len(waiting)))])
                    if batch is None:
                        batch = newcomers
                    elif newcomers is not None:
                        batch.join(self.torch, newcomers)
                elif batch is not None:
                    batch = self._step(batch)

    def _encode(self, todo: list[int]) -> None:
        backend, torch = self.backend, self.torch
        chosen = [self.requests[i] for i in todo]
        budget = [min(r.max_new_tokens, backend.max_length - 1) for r in chosen]
        ids, truncated = backend.encode_rows(chosen, budget)
        for i, request, new, row_ids, cut in zip(todo, chosen, budget, ids, truncated):
            self.rows[i] = Row(request, row_ids, cut, new, backend.stop_ids(request.stop),
                               torch.Generator(device="cpu").manual_seed(request.seed),
                               IncrementalDecoder(backend.tokenizer), request.stop.detector())

    def _admit(self, newcomers: list[int]) -> RunningBatch | None:
        """Prefills the newcomers' prompts and picks their first tokens: the rows still going, or None."""
        torch, backend = self.torch, self.backend
        rows = [self.rows[i] for i in newcomers]
        step_ids, mask, positions, cache, expand = prefill_inputs(backend, [r.ids for r in rows],
                                                                  [r.request.conversation for r in rows])
        for row, computed in zip(rows, expand.computed):
            row.computed = computed
        out = backend.model(input_ids=step_ids, attention_mask=mask, position_ids=positions, past_key_values=cache,
                            use_cache=True)
        self.clock.lap("prefill")
        cache, logits = out.past_key_values, out.logits[:, -1, :].float()
        if expand.index is not None:  # after a shared prefill: one row per request again
            index = torch.tensor(expand.index, device=backend.device)
            cache.batch_select_indices(index)
            logits, mask, positions = logits[index], mask[index], positions[index]
        batch = RunningBatch(newcomers, cache, mask, positions[:, -1:] + 1, None)
        return self._take(batch, logits)

    def _step(self, batch: RunningBatch) -> RunningBatch | None:
        """One decoding step of every row in the batch."""
        batch.mask = self.torch.cat([batch.mask, batch.mask.new_ones((len(batch.rows), 1))], dim=1)
        out = self.backend.model(input_ids=batch.pending, attention_mask=batch.mask, position_ids=batch.positions,
                                 past_key_values=batch.cache, use_cache=True)
        self.clock.lap("decode")
        batch.cache = out.past_key_values
        batch.positions = batch.positions + 1
        return self._take(batch, out.logits[:, -1, :].float())

    def _take(self, batch: RunningBatch, logits: Any) -> RunningBatch | None:
        """Picks each row's next token from ``logits``; finished rows leave (keeping their cache when their
        conversation continues). The rows still going, or None."""
        chosen = self.backend.pick(logits, [self.rows[i].generator for i in batch.rows], self.sampling)
        self.clock.lap("sampling")
        keep = [batch_row for batch_row, (i, token) in enumerate(zip(batch.rows, chosen))
                if not self._add(i, token, batch, batch_row)]
        if not keep:
            return None
        batch.pending = self.torch.tensor(chosen, device=self.backend.device)[:, None]
        if len(keep) < len(batch.rows):
            batch.keep(self.torch, keep)
        return batch

    def _add(self, i: int, token: int, batch: RunningBatch, batch_row: int) -> bool:
        """Adds ``token`` to request ``i``'s reply; True when the reply is finished."""
        row, clock = self.rows[i], self.clock
        row.chosen.append(token)
        finished = token in row.stops
        if not finished:
            piece = row.decoder.add(token)
            clock.lap("detokenize")
            finished = row.detector.feed(piece)
            clock.lap("stop_detection")
        if not finished and len(row.chosen) < row.budget:
            return False
        backend, request = self.backend, row.request
        if backend.reuse_kv and request.continues and request.conversation is not None:
            # Everything fed so far: the prompt and the new tokens but the last, never fed.
            backend.caches.keep(request.conversation, row.ids + row.chosen[:-1], batch.cache, batch_row,
                                batch.mask[batch_row].bool())
        text = backend.tokenizer.decode([t for t in row.chosen if t not in row.stops])
        self.results[i] = GenerationResult(text=text, prompt_tokens=len(row.ids), new_tokens=len(row.chosen),
                                           prompt_truncated=row.truncated, prompt_tokens_computed=row.computed)
        clock.lap("detokenize")
        return True


@dataclass
class Expansion:
    """After a shared prefill: each row's index among the rows fed (None: every row was fed), and the prompt
    tokens computed for each row."""

    index: list[int] | None
    computed: list[int]


def prefill_inputs(backend: DecodingModel, rows: list[list[int]],
                   keys: list[str | None]) -> tuple[Any, Any, Any, Any, Expansion]:
    """The first forward pass's inputs (ids, mask, positions, cache): each row's prompt past what its kept
    cache holds. Rows with the same prompt and nothing kept (a problem's samples at their first turn) are
    encoded once and expanded after the prefill."""
    torch, caches = backend.torch, backend.caches
    reuse = [caches.reusable(key, ids) if backend.reuse_kv else (None, 0) for key, ids in zip(keys, rows)]
    first_of: dict[tuple[int, ...] | int, int] = {}
    encoded: list[int] = []  # the rows actually fed in the prefill
    expand: list[int] = []  # each row's index among them
    for i, ids in enumerate(rows):
        share = tuple(ids) if backend.reuse_kv and not reuse[i][1] else i
        if share not in first_of:
            first_of[share] = len(encoded)
            encoded.append(i)
        expand.append(first_of[share])
    cache, mask = batched_cache(torch, backend.model.config, [reuse[i] for i in encoded], backend.device)
    caches.forget(keys)
    fed = [rows[i][reuse[i][1]:] for i in encoded]
    width = max(len(ids) for ids in fed)
    pad = backend.tokenizer.pad_token_id
    step_ids = torch.tensor([[pad] * (width - len(ids)) + ids for ids in fed], device=backend.device)
    new_mask = torch.tensor([[0] * (width - len(ids)) + [1] * len(ids) for ids in fed], device=backend.device)
    mask = new_mask if mask is None else torch.cat([mask, new_mask], dim=1)
    positions = (mask.cumsum(-1) - 1).clamp(min=0)[:, -width:]
    computed = [0] * len(rows)
    for i, ids in zip(encoded, fed):
        computed[i] = len(ids)
    return step_ids, mask, positions, cache, Expansion(expand if len(encoded) < len(rows) else None, computed)
