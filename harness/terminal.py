"""The command line's two ends: output whose reader has gone (``| head -1``), which must not change a
command's exit status, and arguments whose text is not UTF-8 (a file named in another encoding), which
results could not record."""

from __future__ import annotations

import argparse
import os
import sys


def print_result(text: str) -> None:
    """``text`` on standard output, which the reader may have closed (``| head -1``): then it is dropped and
    the command goes on to its exit status."""
    try:
        print(text, flush=True)
    except BrokenPipeError:
        stdout_to_devnull()


def stdout_to_devnull() -> None:
    """Standard output, its reader gone, points at /dev/null: Python's flush at exit then has nowhere to fail."""
    os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())


def not_utf8(args: argparse.Namespace) -> str | None:
    """The first argument whose text has bytes that are not UTF-8 (Python holds them as lone surrogates)."""
    for name, value in vars(args).items():
        for text in value if isinstance(value, list) else [value]:
            if isinstance(text, str) and not text.isascii():
                try:
                    text.encode("utf-8")
                except UnicodeEncodeError:
                    return name
    return None
