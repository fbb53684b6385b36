"""Suites the harness knows by name, and resolving ``--suite`` (a name or a path) with ``--data``.

``BUILT_IN`` is a table: a suite's name -> ``"module:object"``, the ``SuiteSpec`` its benchmark's module
declares. A module is imported only when its suite is used or listed."""

from __future__ import annotations

import importlib
from pathlib import Path

from harness.errors import InputError
from harness.suites.loader import load_suite
from harness.suites.problems import Suite
from harness.suites.spec import SuiteSpec

_DATASETS = "harness.suites.datasets"
BUILT_IN: dict[str, str] = {
    "core": "harness.suites.bundled:CORE",
    "mtpb": f"{_DATASETS}.mtpb:MTPB",
    "humaneval": f"{_DATASETS}.humaneval:HUMANEVAL_SUITE",
    "humanevalplus": f"{_DATASETS}.humaneval:HUMANEVAL_PLUS_SUITE",
    "mbpp": f"{_DATASETS}.mbpp:MBPP_SUITE",
    "mbpp-bigcode": f"{_DATASETS}.mbpp:MBPP_BIGCODE",
    "mbpp-3shot": f"{_DATASETS}.mbpp:MBPP_3SHOT",
    "mbpp-sanitized": f"{_DATASETS}.mbpp:MBPP_SANITIZED_SUITE",
    "humaneval-infilling-single-line": f"{_DATASETS}.humaneval:INFILLING_SINGLE_LINE",
    "humaneval-infilling-multi-line": f"{_DATASETS}.humaneval:INFILLING_MULTI_LINE",
    "humaneval-infilling-random-span": f"{_DATASETS}.humaneval:INFILLING_RANDOM_SPAN",
    "humaneval-infilling-random-span-light": f"{_DATASETS}.humaneval:INFILLING_RANDOM_SPAN_LIGHT",
}


def suite_spec(name: str) -> SuiteSpec:
    """The declaration of the built-in suite ``name`` (a key of ``BUILT_IN``)."""
    module, _, attribute = BUILT_IN[name].partition(":")
    return getattr(importlib.import_module(module), attribute)


def known_suites() -> dict[str, str]:
    return {name: suite_spec(name).help for name in BUILT_IN}


def resolve_suite(name_or_path: str, data: str | None = None) -> Suite:
    if name_or_path in BUILT_IN:
        return suite_spec(name_or_path).load(data)
    path = Path(name_or_path).expanduser()
    if path.exists():
        return load_suite(path)
    raise InputError(f"unknown suite (known: {', '.join(BUILT_IN)}; or give a folder or YAML file)",
                     file=name_or_path, field="suite")
