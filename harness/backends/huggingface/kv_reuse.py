"""Keys and values kept between a conversation's turns, so a turn feeds only its new tokens.

The prompt of turn t+1 is turn t's prompt, its (truncated) completion and the next turn's text. Instead of
trusting that layout, the next prompt is tokenized whole, exactly as without reuse, and compared token by
token with the tokens whose keys and values were kept: the longest common prefix is reused and only the
rest is fed. The tokens the model sees are therefore the same as when it re-encodes the history; only the
arithmetic is split differently.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


def common_prefix_length(a: list[int], b: list[int]) -> int:
    n = min(len(a), len(b))
    for i in range(n):
        if a[i] != b[i]:
            return i
    return n


@dataclass
class KeptRow:
    """One row's cached tokens and, per layer, their keys and values ([heads, tokens, head_dim])."""

    ids: list[int]
    layers: list[tuple[Any, Any]]


class ConversationCaches:
    """Kept rows by conversation key. A row is taken when its next turn starts and kept again only if the
    conversation has another turn, so nothing outlives a conversation."""

    def __init__(self) -> None:
        self._rows: dict[str, KeptRow] = {}

    def __len__(self) -> int:
        return len(self._rows)

    def reusable(self, key: str | None, ids: list[int]) -> tuple[KeptRow | None, int]:
        """The kept row for ``key`` and how many leading tokens of ``ids`` it already holds (at least one
        token is always left to feed, as the next token's logits come from it)."""
        kept = self._rows.get(key) if key is not None else None
        if kept is None:
            return None, 0
        reuse = min(common_prefix_length(kept.ids, ids), len(ids) - 1)
        return (kept, reuse) if reuse > 0 else (None, 0)

    def forget(self, keys: list[str | None]) -> None:
        for key in keys:
            if key is not None:
                self._rows.pop(key, None)

    def keep(self, key: str, ids: list[int], cache: Any, batch_row: int, valid: Any) -> None:
        """Keep ``batch_row`` of a batched cache; ``valid`` marks its non-padding positions."""
        layers = []
        for layer in cache.layers:  # with --device-map, layers live on different GPUs
            where = valid.to(layer.keys.device)
            layers.append((layer.keys[batch_row][:, where].clone(), layer.values[batch_row][:, where].clone()))
        if layers and layers[0][0].shape[-2] != len(ids):
            raise AssertionError(f"kept {layers[0][0].shape[-2]} positions for {len(ids)} tokens")
        self._rows[key] = KeptRow(ids, layers)


def batched_cache(torch: Any, config: Any, rows: list[tuple[KeptRow | None, int]],
                  device: Any) -> tuple[Any, Any]:
    """A cache for a batch whose rows start from kept rows (their first ``reuse`` tokens), right-aligned
    and left-padded to the longest, and the matching attention mask (on ``device``, the inputs' device;
    each layer's keys stay where that layer lives). ``None`` when no row reuses."""
    from transformers import DynamicCache

    width = max(reuse for _, reuse in rows)
    if width == 0:
        return None, None
    sample = next(kept for kept, reuse in rows if reuse)
    data = []
    for layer, (key0, value0) in enumerate(sample.layers):
        heads, _, dim = key0.shape
        keys = key0.new_zeros((len(rows), heads, width, dim))
        values = value0.new_zeros((len(rows), value0.shape[0], width, value0.shape[-1]))
        for i, (kept, reuse) in enumerate(rows):
            if reuse:
                keys[i, :, width - reuse:] = kept.layers[layer][0][:, :reuse]
                values[i, :, width - reuse:] = kept.layers[layer][1][:, :reuse]
        data.append((keys, values))
    mask = torch.tensor([[0] * (width - reuse) + [1] * reuse for _, reuse in rows], device=device)
    return DynamicCache(ddp_cache_data=data, config=config), mask
