"""Prompt formats: how a conversation's text is laid out for a base code model."""

from __future__ import annotations

from dataclasses import dataclass

from harness.problems import MULTI_TURN, Problem
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
    def truncate(raw: str, problem: Problem) -> str:
        if problem.kind == MULTI_TURN:
            return truncate_mtpb(raw)
        return truncate_at_stops(raw, problem.stop_sequences or CODE_STOP_SEQUENCES)

    @staticmethod
    def stop_detector(problem: Problem) -> StopDetector:
        if problem.kind == MULTI_TURN:
            return MTPBStopDetector()
        return StopSequenceDetector(problem.stop_sequences or CODE_STOP_SEQUENCES)
