"""What every backend takes and gives: the contract generation drives a model through and every backend
(``harness.backends``) implements, so generation needs no backend."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from harness.generation.truncation import StopRule


class BackendError(RuntimeError):
    """A failure the user must hear about in one line (an endpoint that stays down, a reply that is not an
    API's): the run stops, keeping the samples it finished. Every backend's errors of this kind derive from it,
    so the command line needs to know no concrete backend."""


@dataclass(frozen=True)
class SamplingParams:
    temperature: float = 0.2
    top_p: float = 0.95

    @property
    def greedy(self) -> bool:
        return self.temperature == 0


@dataclass
class GenerationRequest:
    """One row to generate. ``seed`` is derived from the run seed and the unit alone, so a row's sample
    does not depend on which other rows share its batch or on the number of processes."""

    prompt: str
    max_new_tokens: int
    seed: int
    # Where the completion ends: stop strings and end-of-text tokens, each backend's own mechanism.
    stop: StopRule = field(default_factory=StopRule)
    reference: str | None = None
    # Fill in the middle: ``prompt`` is the prefix and this the suffix; the answer is the middle.
    suffix: str | None = None
    # Infilling in suffix-prefix-middle order (Code Llama's SPM) instead of prefix-suffix-middle.
    suffix_first: bool = False
    # The conversation this row belongs to, and whether it has another turn: a backend may keep the row's
    # state (its KV cache) under this key for the next turn.
    conversation: str | None = None
    continues: bool = False
    # Chat formats: the conversation as messages ({"role", "content"}), ending with the user's turn.
    messages: list[dict[str, str]] | None = None


@dataclass
class GenerationResult:
    text: str
    prompt_tokens: int = 0
    new_tokens: int = 0
    prompt_truncated: bool = False
    # Prompt tokens the model actually computed for this row (the rest came from kept or shared caches).
    prompt_tokens_computed: int | None = None
    # A reasoning model's thinking, when the server returns it apart from the answer (``reasoning_content``),
    # and its token count when the server reports one.
    reasoning: str = ""
    reasoning_tokens: int | None = None


class Backend(Protocol):
    name: str
    # True for the reference backend: it answers with the problems' reference solutions, used as written.
    requires_reference: bool
    # Whether requests with a ``suffix`` can be answered (prefix-suffix-middle infilling).
    supports_infilling: bool
    # Whether requests with ``messages`` can be answered, and whether the chat format is the default.
    supports_chat: bool
    prefers_chat: bool

    def identity(self) -> dict[str, Any]:
        """Model and tokenizer identity for the results' metadata."""

    def generate(self, requests: list[GenerationRequest], sampling: SamplingParams) -> list[GenerationResult]:
        """Raw completions (before truncation), one per request, in order."""
