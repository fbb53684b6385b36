"""Reading an OpenAI-compatible endpoint's reply and headers, checking every field's type before it is used:
a server (or a proxy in front of it) may answer anything, and what it answers must end as results or as one
line of error, never as a traceback or a sample whose text is not text."""

from __future__ import annotations

import math
import re
from typing import Any

from harness.generation.backend import GenerationResult

# A server asking to wait longer than this is waited this long (then retried, up to --max-retries): a
# Retry-After of a day must not hold a run that Ctrl-C is then the only way out of.
MAX_RETRY_AFTER_SECONDS = 60.0
_SECONDS = re.compile(r"[0-9]{1,9}(?:\.[0-9]{1,9})?")  # ASCII digits: "²" and "٣" pass isdigit(), not float()


class MalformedReply(ValueError):
    """What the reply holds is not what an OpenAI-compatible API answers; the text says which field."""


def retry_after(value: str | None) -> float | None:
    """The seconds a ``Retry-After`` header asks for, capped; None for a date, junk or nothing (the
    client's own backoff applies)."""
    if value is None or not _SECONDS.fullmatch(value.strip()):
        return None
    return min(float(value.strip()), MAX_RETRY_AFTER_SECONDS)


def results_of(reply: dict[str, Any], chat: bool) -> list[GenerationResult]:
    """One result per choice, in the choices' ``index`` order; token counts from ``usage`` (a mean per
    choice when there are several)."""
    choices = reply.get("choices")
    if not isinstance(choices, list) or not all(isinstance(c, dict) for c in choices):
        raise MalformedReply(f"'choices' must be a list of objects, got {_shown(choices)}")
    choices = sorted(choices, key=lambda choice: _count(choice.get("index"), "choices[].index") or 0)
    texts = [_text(choice, chat) for choice in choices]
    reasonings = [_reasoning(choice) if chat else "" for choice in choices]
    usage = reply.get("usage") or {}
    if not isinstance(usage, dict):
        raise MalformedReply(f"'usage' must be an object, got {_shown(usage)}")
    details = usage.get("completion_tokens_details") or {}
    if not isinstance(details, dict):
        raise MalformedReply(f"'usage.completion_tokens_details' must be an object, got {_shown(details)}")
    share = max(1, len(texts))
    reasoning_total = _count(details.get("reasoning_tokens"), "usage.completion_tokens_details.reasoning_tokens")
    reasoning_tokens = None if reasoning_total is None else reasoning_total // share
    prompt_tokens = _count(usage.get("prompt_tokens"), "usage.prompt_tokens") or 0
    new_tokens = (_count(usage.get("completion_tokens"), "usage.completion_tokens") or 0) // share
    return [GenerationResult(text=text, prompt_tokens=prompt_tokens, new_tokens=new_tokens, reasoning=reasoning,
                             reasoning_tokens=reasoning_tokens if reasoning or reasoning_tokens else None)
            for text, reasoning in zip(texts, reasonings)]


def _text(choice: dict[str, Any], chat: bool) -> str:
    """The choice's completion (chat: its message's content); null, as a chat reply that only reasoned
    has, is no text."""
    if chat:
        message = choice.get("message")
        if not isinstance(message, dict):
            raise MalformedReply(f"'choices[].message' must be an object, got {_shown(message)}")
        value, name = message.get("content"), "choices[].message.content"
    else:
        if "text" not in choice:
            raise MalformedReply("a choice has no 'text'")
        value, name = choice["text"], "choices[].text"
    if value is not None and not isinstance(value, str):
        raise MalformedReply(f"'{name}' must be a string, got {_shown(value)}")
    return value or ""


def _reasoning(choice: dict[str, Any]) -> str:
    """A reasoning model's thinking, which vLLM and SGLang return apart from the answer."""
    value = choice["message"].get("reasoning_content")
    if value is not None and not isinstance(value, str):
        raise MalformedReply(f"'choices[].message.reasoning_content' must be a string, got {_shown(value)}")
    return value or ""


def _count(value: Any, name: str) -> int | None:
    """A token count or index: a whole number, 0 or more (a float with no fraction, as some servers write
    it, is one); None where absent."""
    if value is None:
        return None
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        value = int(value)
    if type(value) is not int or value < 0:
        raise MalformedReply(f"'{name}' must be a whole number, 0 or more, got {_shown(value)}")
    return value


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
