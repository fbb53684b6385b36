"""Prompt formats: how a conversation is laid out for a base code model, or for an Instruct/chat model."""

from __future__ import annotations

import re
from dataclasses import dataclass

from harness.suites.problems import MULTI_TURN, Problem
from harness.generation.truncation import CODE_STOP_SEQUENCES, MTPB_STOP, StopRule, truncate_at_stops, truncate_mtpb


@dataclass(frozen=True)
class BaseCompletionFormat:
    """MTPB's format for base code models (CodeGen, Code Llama base): the program prefix, each turn as
    ``# {prompt}\\n``, generation from the whole history, then the truncated completion and ``\\n\\n``."""

    name: str = "base"

    @staticmethod
    def turn_text(prompt: str) -> str:
        return f"# {prompt}\n"

    @staticmethod
    def truncate(raw: str, problem: Problem) -> str:
        if problem.kind == MULTI_TURN:
            return truncate_mtpb(raw)
        return truncate_at_stops(raw, problem.stop_sequences or CODE_STOP_SEQUENCES)

    @staticmethod
    def stop_rule(problem: Problem) -> StopRule:
        if problem.kind == MULTI_TURN:
            return MTPB_STOP
        return StopRule(strings=tuple(problem.stop_sequences or CODE_STOP_SEQUENCES))


FENCE = re.compile(r"^[ \t]*```[ \t]*([\w+-]*)[^\n]*\n(.*?)(?:^[ \t]*```[ \t]*$|\Z)", re.DOTALL | re.MULTILINE)
CODE_LANGUAGES = {"", "python", "py", "python3"}


def extract_code(reply: str) -> str:
    """The Python in a chat reply: every fenced block labelled Python (or unlabelled) joined in order; a
    block cut off by the token budget counts up to where it stops; a reply without fences is taken as code."""
    blocks = [(lang.lower(), body) for lang, body in FENCE.findall(reply)]
    code = [body.rstrip("\n") for lang, body in blocks if lang in CODE_LANGUAGES]
    if code:
        return "\n".join(code)
    return reply.strip("\n") if not blocks else ""


def extraction_outcome(reply: str) -> str:
    """How ``extract_code`` took the code from a chat reply, recorded with each chat turn: ``block`` (one
    fenced Python block), ``blocks`` (several, joined), ``cut_block`` (the last one never closed: the token
    budget ran out), ``unfenced`` (no fence: the whole reply) or ``no_code`` (only other languages' blocks, or
    an empty reply)."""
    matches = [m for m in FENCE.finditer(reply) if m.group(1).lower() in CODE_LANGUAGES]
    if not matches:
        return "unfenced" if reply.strip() and not FENCE.search(reply) else "no_code"
    lines = matches[-1].group(0).rstrip("\n").splitlines()
    if len(lines) < 2 or lines[-1].strip() != "```":
        return "cut_block"
    return "block" if len(matches) == 1 else "blocks"


@dataclass(frozen=True)
class ChatFormat:
    """Instruct/chat models through the tokenizer's chat template (or a chat endpoint). A multi-turn problem
    is a real conversation: each turn is a user message, the code extracted from the model's reply is the
    assistant message, and the program is the program prefix plus the extracted code of every turn. A
    single-prompt problem asks for the function in one message."""

    name: str = "chat"
    first_turn_instruction: str = ("Write a Python program step by step. Answer each step with one ```python "
                                   "code block that continues the program written so far; do not repeat "
                                   "earlier code.\n\n")
    function_instruction: str = ("Complete the following Python code. Answer with the complete function in "
                                 "one ```python code block.\n\n```python\n{prompt}```")

    def user_message(self, problem: Problem, turn_prompt: str, turn: int) -> str:
        if problem.kind != MULTI_TURN:
            return self.function_instruction.format(prompt=problem.prompt)
        return (self.first_turn_instruction if turn == 0 else "") + turn_prompt

    @staticmethod
    def assistant_message(code: str) -> str:
        return f"```python\n{code}\n```"

    @staticmethod
    def program_for_function(problem: Problem, code: str) -> str:
        """An indented reply is the stub's body. Otherwise the reply restates the definition: it replaces
        the prompt's from the ``def``/``class`` of the entry point on, and what comes before (imports,
        helpers) stays."""
        if code.startswith((" ", "\t")):
            return problem.program_head + code + "\n"
        definition = re.search(rf"^(?:async\s+def|def|class)\s+{re.escape(problem.entry_point)}\b", problem.prompt,
                               re.MULTILINE) if problem.entry_point else None
        head = problem.prompt[:definition.start()] if definition else ""
        return head + code + "\n"

    @staticmethod
    def stop_rule(problem: Problem) -> StopRule:
        return StopRule()  # a reply ends at the end-of-turn token or the budget
