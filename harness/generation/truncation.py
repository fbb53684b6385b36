"""Where a completion ends: MTPB's per-turn truncation and stop sequences for code prompts, each with an
incremental detector that looks only at newly generated text to stop a row as early as possible."""

from __future__ import annotations

import re
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


class MTPBStopDetector:
    """Decides, line by line, when MTPB truncation will certainly cut the completion.

    Only the new text and the current unfinished line are examined at each step, so the cost per token
    does not grow with the completion's length.
    """

    _LINE_TERMINALS = ("#", "'''", '"""')

    def __init__(self) -> None:
        self.line = ""
        self.at_line_start = True
        self.prints = 0
        self.defs = 0
        self.newline_run = 0
        self.tail = ""
        self.done = False

    def feed(self, text: str) -> bool:
        if self.done:
            return True
        window = self.tail + text
        if END_OF_TEXT in window:
            self.done = True
            return True
        self.tail = window[-(len(END_OF_TEXT) - 1):]
        for char in text:
            if char == "\n":
                self.newline_run += 1
                if self.newline_run >= 3:
                    self.done = True
                    return True
                self._close_line()
            else:
                self.newline_run = 0
                self.line += char
                if len(self.line) <= 5 and self._line_decides():
                    self.done = True
                    return True
        return False

    def _line_decides(self) -> bool:
        line = self.line
        if line.startswith(self._LINE_TERMINALS):
            return True
        if line == "print" and self.prints >= 1:
            return True
        if line[:3] == "def" and self.defs >= 1:
            return True
        return False

    def _close_line(self) -> None:
        if self.line.startswith("print"):
            self.prints += 1
        if self.line.startswith("def"):
            self.defs += 1
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
