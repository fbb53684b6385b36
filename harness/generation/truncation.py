"""Where a completion ends: MTPB's per-turn truncation and stop sequences for code prompts, each also a
``StopRule`` (data) that a backend turns into its own mechanism, such as an incremental detector that looks
only at newly generated text to stop a row as early as possible."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Protocol

END_OF_TEXT = "<|endoftext|>"
CODE_STOP_SEQUENCES = ("\ndef", "\nclass", "\nif", "\nprint", "\n#")

_MTPB_TERMINALS = [re.compile(pattern, re.MULTILINE)
                   for pattern in ("^#", re.escape(END_OF_TEXT), "^'''", '^"""', "\n\n\n")]


def truncate_mtpb(completion: str) -> str:
    """MTPB's truncation, in its order: cut before the 2nd line starting with ``print``, then before the
    2nd line starting with ``def``, then at the earliest of a line starting with ``#``, ``<|endoftext|>``,
    a line starting with ``'''`` or ``\"\"\"``, or three newlines in a row."""
    prints = list(re.finditer("^print", completion, re.MULTILINE))
    if len(prints) > 1:
        completion = completion[:prints[1].start()]
    defs = list(re.finditer("^def", completion, re.MULTILINE))
    if len(defs) > 1:
        completion = completion[:defs[1].start()]
    positions = [m.start() for m in (t.search(completion) for t in _MTPB_TERMINALS) if m]
    return completion[:min(positions)] if positions else completion


def truncate_at_stops(completion: str, stops: tuple[str, ...]) -> str:
    """Cut at the earliest stop sequence (HumanEval/Codex style)."""
    positions = [i for i in (completion.find(s) for s in stops) if i != -1]
    return completion[:min(positions)] if positions else completion


class StopDetector(Protocol):
    def feed(self, text: str) -> bool:
        """Take newly generated text; True once the completion's end is certain."""


# End-of-text tokens a rule can name; each backend maps them to its own ids (a served model stops at its own).
END_OF_SEQUENCE = "eos"  # the tokenizer's end of sequence
END_OF_MIDDLE = "eot"  # fill in the middle: the end of the middle (Code Llama's <EOT>)


@dataclass(frozen=True)
class StopRule:
    """Where a completion ends, as data that each backend turns into its own mechanism (the Hugging Face
    loop's incremental detector, an endpoint's ``stop`` parameter). The harness truncates client-side too.

    ``strings`` end the completion right before their first occurrence, wherever it is; only these are exact
    as an endpoint's ``stop`` strings. ``line_starts`` end it before the first line starting with one of them,
    ``second_line_starts`` before the second line starting with the same one (MTPB's ``print``/``def``). An
    endpoint cannot express those two without moving the cut by a newline, so it gets ``strings`` alone."""

    strings: tuple[str, ...] = ()
    line_starts: tuple[str, ...] = ()
    second_line_starts: tuple[str, ...] = ()
    tokens: tuple[str, ...] = (END_OF_SEQUENCE,)

    def detector(self) -> StopDetector:
        if self.line_starts or self.second_line_starts:
            return LineStopDetector(self)
        return StopSequenceDetector(self.strings)


# Fill in the middle: the middle ends at its own token (and is used whole).
INFILLING_STOP = StopRule(tokens=(END_OF_SEQUENCE, END_OF_MIDDLE))
# MTPB's truncation (truncate_mtpb) as a rule.
MTPB_STOP = StopRule(strings=(END_OF_TEXT, "\n\n\n"), line_starts=("#", "'''", '"""'),
                     second_line_starts=("print", "def"))


class LineStopDetector:
    """Decides, line by line, when a rule with line rules (MTPB's) will certainly cut the completion.

    Only the new text and the current unfinished line are examined at each step, so the cost per token
    does not grow with the completion's length.
    """

    def __init__(self, rule: StopRule) -> None:
        self.strings = tuple(s for s in rule.strings if s)
        self.overlap = max((len(s) for s in self.strings), default=1) - 1
        self.line_starts = rule.line_starts
        self.second_line_starts = rule.second_line_starts
        self.decisive_length = max(len(p) for p in (*rule.line_starts, *rule.second_line_starts))
        self.seen = {prefix: 0 for prefix in rule.second_line_starts}  # closed lines starting with each
        self.line = ""
        self.tail = ""
        self.done = False

    def feed(self, text: str) -> bool:
        if self.done:
            return True
        window = self.tail + text
        for string in self.strings:
            if string in window:
                self.done = True
                return True
        self.tail = window[-self.overlap:] if self.overlap else ""
        for char in text:
            if char == "\n":
                self._close_line()
                continue
            self.line += char
            if len(self.line) <= self.decisive_length and self._line_decides():
                self.done = True
                return True
        return False

    def _line_decides(self) -> bool:
        line = self.line
        if line.startswith(self.line_starts):
            return True
        for prefix in self.second_line_starts:
            if line == prefix and self.seen[prefix]:
                return True
        return False

    def _close_line(self) -> None:
        line = self.line
        if line:
            for prefix in self.second_line_starts:
                if line.startswith(prefix):
                    self.seen[prefix] += 1
            self.line = ""


class StopSequenceDetector:
    """Stops once any stop sequence appears, searching only the new text plus a short overlap."""

    def __init__(self, stops: tuple[str, ...]):
        self.stops = tuple(s for s in stops if s)
        self.overlap = max((len(s) for s in self.stops), default=1) - 1
        self.tail = ""
        self.done = False

    def feed(self, text: str) -> bool:
        if self.done or not self.stops:
            return self.done
        window = self.tail + text
        if any(stop in window for stop in self.stops):
            self.done = True
        self.tail = window[-self.overlap:] if self.overlap else ""
        return self.done
