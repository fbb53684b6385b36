"""MBPP (Austin et al.): the 500-problem test split (task ids 11-510) and its sanitized subset.

The prompt is the description and the three test asserts inside a triple-quoted docstring, one per
line (the MBPP paper shows the model the tests; bigcode-evaluation-harness's InCoder-style prompt puts
the description and the first assert in such a docstring). The program is the prompt, the completion,
the test setup code and the asserts; generation stops at bigcode's stop words.
"""

from __future__ import annotations

import json
from typing import Any

from harness.datasets.fetch import DataFile, LocatedFile, hub_fallback, locate
from harness.datasets.jsonl import read_jsonl
from harness.errors import InputError
from harness.problems import CODE, Problem
from harness.suite_loader import Suite

MBPP = DataFile(name="MBPP", filename="mbpp.jsonl",
                url="https://raw.githubusercontent.com/google-research/google-research/master/mbpp/mbpp.jsonl",
                sha256="ccf64ceae9c5403bf50a044cb6d505bfd2a2963ee58338ba268fd65beab92a9f")
MBPP_SANITIZED = DataFile(
    name="MBPP sanitized", filename="sanitized-mbpp.json",
    url="https://raw.githubusercontent.com/google-research/google-research/master/mbpp/sanitized-mbpp.json",
    sha256="ca95deaa9a01ef0a6f439f88bcf0dd3db3563d22f22aad6cae04ebb9a8d8c8e9")
TEST_IDS = range(11, 511)
STOP_SEQUENCES = ("\nclass", "\nassert", '\n"""', "\nprint", "\nif", "\n<|/", "\n```")


def mbpp_prompt(description: str, tests: list[str]) -> str:
    return '"""\n' + description + "\n" + "\n".join(tests) + '\n"""\n'


def _problem(task_id: int, description: str, code: str, tests: list[str], setup: str, source: str,
             category: str) -> Problem:
    test = (setup + "\n" if setup else "") + "\n".join(tests) + "\n"
    return Problem(id=f"Mbpp/{task_id}", category=category, kind=CODE, source=source,
                   prompt=mbpp_prompt(description, tests), entry_point="", test=test, reference=code,
                   max_new_tokens=512, timeout=10.0, stop_sequences=STOP_SEQUENCES)


def _suite(name: str, description: str, located: LocatedFile, problems: list[Problem]) -> Suite:
    if not problems:
        raise InputError("no test-split problems (task ids 11-510) in the file", file=str(located.path),
                         field="task_id")
    return Suite(name=name, path=str(located.path), problems=tuple(problems), scorer="strict",
                 description=description, program_prefix="", origin=located.origin(), preload=())


def _records(spec: DataFile, data: str | None, hub_config: str) -> tuple[LocatedFile, list[dict[str, Any]]]:
    try:
        located = locate(spec, data)
    except InputError as no_download:
        if data:
            raise
        located = hub_fallback(no_download, "google-research-datasets/mbpp", hub_config,
                               f"mbpp-{hub_config}-from-hub.jsonl", "MBPP (no download, no hub)")
    if located.path.suffix == ".json":
        try:
            records = json.loads(located.path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise InputError(f"not JSON ({exc.msg})", file=str(located.path)) from None
    else:
        records = read_jsonl(located.path)
    for index, record in enumerate(records):
        for name in ("task_id", "code", "test_list"):
            if name not in record:
                raise InputError(f"record {index} lacks a required field", file=str(located.path),
                                 problem=str(record.get("task_id", index)), field=name)
    return located, [r for r in records if int(r["task_id"]) in TEST_IDS]


def load_mbpp(data: str | None = None) -> Suite:
    located, records = _records(MBPP, data, "full")
    problems = [_problem(r["task_id"], r["text"], r["code"], r["test_list"], r.get("test_setup_code", ""),
                         str(located.path), "mbpp") for r in records]
    return _suite("mbpp", "MBPP test split: 500 crowd-sourced Python problems (Google)", located, problems)


def load_mbpp_sanitized(data: str | None = None) -> Suite:
    located, records = _records(MBPP_SANITIZED, data, "sanitized")
    problems = [_problem(r["task_id"], r["prompt"], r["code"], r["test_list"], "\n".join(r.get("test_imports", [])),
                         str(located.path), "mbpp-sanitized") for r in records]
    return _suite("mbpp-sanitized", "MBPP sanitized subset, test split (hand-verified descriptions)", located,
                  problems)
