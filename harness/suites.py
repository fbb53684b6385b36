"""Suites the harness knows by name, and resolving ``--suite`` (a name or a path)."""

from __future__ import annotations

from pathlib import Path

from harness.errors import InputError
from harness.suite_loader import Suite, load_suite

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"
BUILTIN = {
    "core": (BENCHMARKS / "core", "the team's own suite: multi-turn and code-prompt problems"),
}


def known_suites() -> dict[str, str]:
    return {name: description for name, (_, description) in BUILTIN.items()}


def resolve_suite(name_or_path: str) -> Suite:
    if name_or_path in BUILTIN:
        return load_suite(BUILTIN[name_or_path][0], name=name_or_path)
    path = Path(name_or_path).expanduser()
    if path.exists():
        return load_suite(path)
    raise InputError(f"unknown suite (known: {', '.join(BUILTIN)}; or give a folder or YAML file)",
                     file=name_or_path, field="suite")
