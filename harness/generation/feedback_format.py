"""How execution feedback is shown to a model, in one place (recorded in ``summary.json``): a comment block
in the program for base models, a user message for chat models; and how a thinking model's reasoning is
taken out of its reply before the code is extracted."""

from __future__ import annotations

import re

TEMPLATES: dict[str, str] = {
    # Base models: a comment block after the failed attempt, then the turn's comment (or the prompt) again.
    "base_turn": "# Feedback: running the program so far failed at the step above:\n{error}# Write that step "
                 "again.\n",
    "base_code": "# Feedback: the code above failed:\n{error}# Write it again.\n",
    # Chat models: a user message after the assistant's failed attempt.
    "chat_turn": "Running the program so far failed at this step:\n{error}\nWrite this step's code again, as one "
                 "```python block.",
    "chat_code": "Your code failed:\n{error}\nAnswer with the corrected complete function in one ```python block.",
}

THINK = re.compile(r"<think>.*?(?:</think>|\Z)", re.DOTALL)


def split_reasoning(reply: str) -> tuple[str, str]:
    """``(answer, reasoning)``: ``<think>...</think>`` blocks removed from the reply (an unclosed one runs to
    the end: a reply cut off by the budget while thinking has no answer)."""
    reasoning = "".join(match.group(0) for match in THINK.finditer(reply))
    return (THINK.sub("", reply), reasoning) if reasoning else (reply, "")


def render(template: str, error: str, comment: bool) -> str:
    """A template filled with the error, as ``# `` lines for base models (their feedback is part of the
    program text, so it must stay a comment)."""
    if comment:
        error = "".join(f"# {line}\n" for line in error.splitlines() or [""])
    return TEMPLATES[template].format(error=error)
