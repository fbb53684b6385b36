"""Where the suites shipped with the harness live: ``benchmarks/`` in a source checkout (where users look
for them and edit them), and ``harness/benchmarks/`` once installed by ``pip install .``, which ships the
same files as package data (``pyproject.toml`` maps the one folder onto the other). Declares the ``core``
suite."""

from __future__ import annotations

from pathlib import Path

from harness.suites.loader import load_suite
from harness.suites.problems import Suite
from harness.suites.spec import SuiteSpec

_HARNESS = Path(__file__).resolve().parent.parent


def benchmarks_dir() -> Path:
    installed = _HARNESS / "benchmarks"
    return installed if installed.is_dir() else _HARNESS.parent / "benchmarks"


def core_suite_dir() -> Path:
    """The built-in ``core`` suite, also the tiny models' tokenizer corpus."""
    return benchmarks_dir() / "core"


def load_core(data: str | None) -> Suite:
    """``--suite core``: the bundled folder, or ``--data`` another folder or file in its place."""
    return load_suite(data or core_suite_dir(), name="core")


CORE = SuiteSpec("core", "the harness's own suite: multi-turn and code-prompt problems", load_core)
