"""Where the suites shipped with the harness live: ``benchmarks/`` in a source checkout (where users look
for them and edit them), and ``harness/benchmarks/`` once installed by ``pip install .``, which ships the
same files as package data (``pyproject.toml`` maps the one folder onto the other)."""

from __future__ import annotations

from pathlib import Path

_HARNESS = Path(__file__).resolve().parent.parent


def benchmarks_dir() -> Path:
    installed = _HARNESS / "benchmarks"
    return installed if installed.is_dir() else _HARNESS.parent / "benchmarks"


def core_suite_dir() -> Path:
    """The built-in ``core`` suite, also the tiny models' tokenizer corpus."""
    return benchmarks_dir() / "core"
