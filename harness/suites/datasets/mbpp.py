"""MBPP (Austin et al.): the 500-problem test split (task ids 11-510) and its sanitized subset, under the
prompting protocols that published numbers use, so that a score is comparable with the one it is put
next to:

- ``mbpp`` (this harness's own): the description and all three test asserts in a triple-quoted docstring,
  zero-shot; generation stops at bigcode's stop words.
- ``mbpp-bigcode``: bigcode-evaluation-harness's ``mbpp`` task (InCoder's prompt): the description and the
  *first* assert in the docstring, zero-shot, the same stop words.
- ``mbpp-3shot``: the MBPP paper's and lm-evaluation-harness's ``mbpp`` task: three worked examples (prompt
  split task ids 2, 3 and 4, taken from the data file), each "You are an expert Python programmer, and here
  is your task: {text} Your code should pass these tests:\n\n{asserts}\n[BEGIN]\n{code}\n[DONE]", then
  the problem's own text up to ``[BEGIN]``; generation stops at ``[DONE]`` and the program is the
  completion alone (the prompt is not code).

In every protocol the program ends with the test setup code (only problem 367 has any) and the three
asserts. Both upstream harnesses drop the setup code, so 367 can never pass there; here it can. The test
``--feedback tests`` may show is the first assert. Declares the suites ``mbpp``, ``mbpp-bigcode``,
``mbpp-3shot`` and ``mbpp-sanitized``.
"""

from __future__ import annotations

import json
from functools import partial
from typing import Any

from harness.suites.datasets.fetch import DataFile, LocatedFile, locate
from harness.suites.datasets.hub import hub_fallback
from harness.jsonl import read_jsonl
from harness.errors import InputError
from harness.suites.problems import CODE, Problem, Suite
from harness.suites.spec import SuiteSpec

MBPP = DataFile(name="MBPP", filename="mbpp.jsonl",
                url="https://raw.githubusercontent.com/google-research/google-research/master/mbpp/mbpp.jsonl",
                sha256="ccf64ceae9c5403bf50a044cb6d505bfd2a2963ee58338ba268fd65beab92a9f")
MBPP_SANITIZED = DataFile(
    name="MBPP sanitized", filename="sanitized-mbpp.json",
    url="https://raw.githubusercontent.com/google-research/google-research/master/mbpp/sanitized-mbpp.json",
    sha256="ca95deaa9a01ef0a6f439f88bcf0dd3db3563d22f22aad6cae04ebb9a8d8c8e9")
TEST_IDS = range(11, 511)
STOP_SEQUENCES = ("\nclass", "\nassert", '\n"""', "\nprint", "\nif", "\n<|/", "\n```")
FEW_SHOT_IDS = (2, 3, 4)  # the MBPP paper's and lm-evaluation-harness's three examples (prompt split)
FEW_SHOT_STOP = ("[DONE]",)


def mbpp_prompt(description: str, tests: list[str]) -> str:
    return '"""\n' + description + "\n" + "\n".join(tests) + '\n"""\n'


def few_shot_task(description: str, tests: list[str]) -> str:
    return (f"You are an expert Python programmer, and here is your task: {description} Your code should pass "
            "these tests:\n\n" + "\n".join(tests) + "\n[BEGIN]")


def few_shot_prefix(shots: list[dict[str, Any]]) -> str:
    """lm-evaluation-harness's layout: each example's task, "\n", its code and "\n[DONE]"; examples and the
    question separated by a blank line."""
    return "".join(few_shot_task(r["text"], r["test_list"]) + "\n" + r["code"] + "\n[DONE]\n\n" for r in shots)


def _problem(task_id: int, description: str, code: str, tests: list[str], setup: str, source: str,
             category: str, protocol: str = "harness", shots: str = "") -> Problem:
    test = (setup + "\n" if setup else "") + "\n".join(tests) + "\n"
    common = dict(id=f"Mbpp/{task_id}", category=category, kind=CODE, source=source, entry_point="", test=test,
                  reference=code, max_new_tokens=512, timeout=10.0, prompt_examples=first_assert(test))
    if protocol == "3shot":
        return Problem(prompt=shots + few_shot_task(description, tests), stop_sequences=FEW_SHOT_STOP,
                       prompt_in_program=False, **common)
    shown = tests[:1] if protocol == "bigcode" else tests
    return Problem(prompt=mbpp_prompt(description, shown), stop_sequences=STOP_SEQUENCES, **common)


def first_assert(test: str) -> tuple[str, ...]:
    """The problem's first assert: the example its prompt shows in every protocol."""
    first = next((line.strip() for line in test.splitlines() if line.strip().startswith("assert")), None)
    return (first,) if first else ()


def _suite(name: str, description: str, located: LocatedFile, problems: list[Problem]) -> Suite:
    if not problems:
        raise InputError("no test-split problems (task ids 11-510) in the file", file=str(located.path),
                         field="task_id")
    return Suite(name=name, path=str(located.path), problems=tuple(problems), scorer="strict",
                 description=description, program_prefix="", origin=located.origin(), preload=())


def _records(spec: DataFile, data: str | None,
             hub_config: str) -> tuple[LocatedFile, list[dict[str, Any]], dict[int, dict[str, Any]]]:
    """The located file, its test-split records, and every record by task id (for few-shot examples)."""
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
    by_id = {int(r["task_id"]): r for r in records}
    return located, [r for r in records if int(r["task_id"]) in TEST_IDS], by_id


NAMES = {"harness": ("mbpp", "MBPP test split: 500 crowd-sourced Python problems (Google); description and "
                             "three asserts, zero-shot"),
         "bigcode": ("mbpp-bigcode", "MBPP test split as bigcode-evaluation-harness prompts it: description and "
                                     "the first assert, zero-shot"),
         "3shot": ("mbpp-3shot", "MBPP test split as the MBPP paper and lm-evaluation-harness prompt it: three-shot "
                                 "(task ids 2-4), [BEGIN]/[DONE]")}


def load_mbpp(data: str | None = None, protocol: str = "harness") -> Suite:
    located, records, by_id = _records(MBPP, data, "full")
    shots = ""
    if protocol == "3shot":
        missing = [i for i in FEW_SHOT_IDS if i not in by_id]
        if missing:
            raise InputError(f"the three-shot protocol takes its examples from the prompt split (task ids 2-4), "
                             f"which this file lacks (no task {missing[0]}); use the full mbpp.jsonl",
                             file=str(located.path), field="task_id")
        shots = few_shot_prefix([by_id[i] for i in FEW_SHOT_IDS])
    problems = [_problem(r["task_id"], r["text"], r["code"], r["test_list"], r.get("test_setup_code", ""),
                         str(located.path), "mbpp", protocol, shots) for r in records]
    name, description = NAMES[protocol]
    return _suite(name, description, located, problems)


def load_mbpp_sanitized(data: str | None = None) -> Suite:
    located, records, _ = _records(MBPP_SANITIZED, data, "sanitized")
    problems = [_problem(r["task_id"], r["prompt"], r["code"], r["test_list"], "\n".join(r.get("test_imports", [])),
                         str(located.path), "mbpp-sanitized") for r in records]
    return _suite("mbpp-sanitized", "MBPP sanitized subset, test split (hand-verified descriptions)", located,
                  problems)


MBPP_SUITE = SuiteSpec("mbpp", "MBPP test split, 500 problems, description + 3 asserts zero-shot (--data "
                               "mbpp.jsonl, download or hub)", partial(load_mbpp, protocol="harness"))
MBPP_BIGCODE = SuiteSpec("mbpp-bigcode", "MBPP as bigcode-evaluation-harness prompts it (first assert, zero-shot)",
                         partial(load_mbpp, protocol="bigcode"))
MBPP_3SHOT = SuiteSpec("mbpp-3shot", "MBPP as the paper and lm-evaluation-harness prompt it (three-shot, ids 2-4)",
                       partial(load_mbpp, protocol="3shot"))
MBPP_SANITIZED_SUITE = SuiteSpec("mbpp-sanitized", "MBPP sanitized, test split (--data sanitized-mbpp.json, ...)",
                                 load_mbpp_sanitized)
