"""Prompt formats: how a conversation's text is laid out for a base code model."""

from __future__ import annotations

from dataclasses import dataclass

from harness.truncation import CODE_STOP_SEQUENCES, MTPBStopDetector, StopDetector, StopSequenceDetector, \
    truncate_at_stops, truncate_mtpb


@dataclass(frozen=True)
class BaseCompletionFormat:
    """MTPB's format for base code models (CodeGen, Code Llama base): the program prefix, each turn as
    ``# {prompt}\\n``, generation from the whole history, then the truncated completion and ``\\n\\n``."""

    name: str = "base"

    @staticmethod
    def turn_text(prompt: str) -> str:
        return f"# {prompt}\n"

    @staticmethod
    def after_completion(completion: str) -> str:
        return f"{completion}\n\n"

    @staticmethod
    def truncate(raw: str, multi_turn: bool) -> str:
        return truncate_mtpb(raw) if multi_turn else truncate_at_stops(raw, CODE_STOP_SEQUENCES)

    @staticmethod
    def stop_detector(multi_turn: bool) -> StopDetector:
        return MTPBStopDetector() if multi_turn else StopSequenceDetector(CODE_STOP_SEQUENCES)
