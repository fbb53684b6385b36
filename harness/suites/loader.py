"""Reading a suite from a folder of YAML files, with every mistake reported as one precise line.

A suite folder holds ``suite.yaml`` (name, description, scorer, ``defaults`` for every problem) and any
number of problem files: each is one problem mapping, a list of them, or a mapping with ``problems:``
(a list) and its own ``defaults:``. A problem may also say ``include: other.yaml`` (a path relative to its
file) to take that file's mapping as defaults; a file some problem includes is a fragment, not a problem
file, and so is every file whose name starts with ``_``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

from harness.errors import InputError
from harness.suites.problems import CODE, MULTI_TURN, SCORERS, Problem, Suite, TestCase, Turn, fill, placeholders
from harness.suites.python_text import literal, syntax_problem
from harness.suites.yaml_input import load_yaml_file

SUITE_FILE = "suite.yaml"
PROBLEM_FIELDS = {"id", "category", "tags", "turns", "tests", "prompt", "entry_point", "test", "reference",
                  "max_new_tokens", "timeout", "scorer", "description", "defects", "include", "public_tests"}
FEEDBACK_MODES = ("none", "errors", "tests")
TURN_FIELDS = {"prompt", "max_new_tokens", "reference"}
TEST_FIELDS = {"inputs", "expected", "expected_literal"}


def _read_yaml(path: Path) -> Any:
    return load_yaml_file(path)


def load_suite(path: str | Path, name: str | None = None) -> Suite:
    """Load and validate every problem of the suite folder (or single YAML file) at ``path``."""
    root = Path(path)
    if not root.exists():
        raise InputError("no such suite folder or file", file=str(root))
    meta: dict[str, Any] = {}
    if root.is_dir():
        suite_file = root / SUITE_FILE
        if suite_file.exists():
            meta = _read_yaml(suite_file) or {}
            if not isinstance(meta, dict):
                raise InputError("must be a mapping", file=str(suite_file))
        files = sorted(p for p in root.rglob("*.yaml") if p.name != SUITE_FILE and not p.name.startswith("_"))
    else:
        files = [root]
    _check_suite_meta(meta, str(root / SUITE_FILE))
    scorer = meta.get("scorer", "strict")
    defaults = dict(meta.get("defaults") or {})
    defaults.setdefault("scorer", scorer)
    contents = {file: _read_yaml(file) for file in files}
    fragments = {target for file, data in contents.items() for target in _included_files(file, data)}
    problems: list[Problem] = []
    seen: dict[str, str] = {}
    for file in files:
        if file.resolve() in fragments:  # shared fields for the problems that include it, not a problem
            continue
        for problem in _problems_in_file(file, contents[file], defaults):
            if problem.id in seen:
                raise InputError(f"duplicate problem id (also in {seen[problem.id]})", file=str(file),
                                 problem=problem.id, field="id")
            seen[problem.id] = str(file)
            problems.append(problem)
    if not problems:
        raise InputError("the suite has no problems", file=str(root))
    return Suite(name=name or meta.get("name") or root.stem, path=str(root), problems=tuple(problems),
                 scorer=scorer, description=meta.get("description", ""),
                 program_prefix=meta.get("program_prefix", Suite.program_prefix),
                 preload=tuple(meta.get("sandbox_preload", Suite.preload)),
                 excluded_if_defective=tuple(str(p) for p in meta.get("exclude_if_defective") or ()),
                 origin=meta.get("imported_from"), feedback=meta.get("feedback"),
                 max_repairs=meta.get("max_repairs"))


def _entries(data: Any) -> Any:
    if isinstance(data, dict) and "problems" in data:
        return data["problems"]
    return data if isinstance(data, list) else [data]


def _included_files(file: Path, data: Any) -> set[Path]:
    """The files that ``file``'s problems name with ``include:`` (resolved)."""
    entries = _entries(data)
    if not isinstance(entries, list):
        return set()
    return {(file.parent / str(entry["include"])).resolve() for entry in entries
            if isinstance(entry, dict) and isinstance(entry.get("include"), str)}


def _check_suite_meta(meta: dict[str, Any], file: str) -> None:
    """suite.yaml's fields, each with its type, before any of them is used."""
    def require(ok: bool, field: str, what: str) -> None:
        if not ok:
            raise InputError(f"must be {what}, got {meta[field]!r}", file=file, field=field)

    for name in ("name", "description", "program_prefix"):
        if name in meta:
            require(isinstance(meta[name], str), name, "a string")
    if "scorer" in meta and meta["scorer"] not in SCORERS:
        raise InputError(f"unknown scorer {meta['scorer']!r} (choose from {', '.join(SCORERS)})", file=file,
                         field="scorer")
    if meta.get("defaults") is not None:
        require(isinstance(meta["defaults"], dict) and all(isinstance(k, str) for k in meta["defaults"]),
                "defaults", "a mapping of problem fields to values")
    for name in ("sandbox_preload", "exclude_if_defective"):
        if meta.get(name) is not None:
            require(isinstance(meta[name], list) and all(isinstance(v, (str, int)) and not isinstance(v, bool)
                                                         for v in meta[name]), name, "a list of names")
    if "feedback" in meta:
        require(meta["feedback"] in FEEDBACK_MODES, "feedback", "one of " + ", ".join(FEEDBACK_MODES))
    if "max_repairs" in meta:
        require(type(meta["max_repairs"]) is int and 0 <= meta["max_repairs"] <= 100, "max_repairs",
                "a whole number from 0 to 100")
    if meta.get("imported_from") is not None:
        require(isinstance(meta["imported_from"], dict), "imported_from", "a mapping")


def _problems_in_file(file: Path, data: Any, suite_defaults: dict[str, Any]) -> list[Problem]:
    defaults = dict(suite_defaults)
    if isinstance(data, dict) and "problems" in data:
        file_defaults = data.get("defaults") or {}
        if not isinstance(file_defaults, dict):
            raise InputError("must be a mapping of problem fields to values", file=str(file), field="defaults")
        defaults.update(file_defaults)
    entries = _entries(data)
    if not isinstance(entries, list) or not entries:
        raise InputError("expected a problem mapping or a list of problems", file=str(file))
    problems = []
    for index, entry in enumerate(entries):
        if not isinstance(entry, dict):
            raise InputError(f"entry {index} is not a mapping", file=str(file))
        if "include" in entry:
            if not isinstance(entry["include"], str):
                raise InputError(f"entry {index}: include must be a file name", file=str(file), field="include")
            included = _read_yaml(file.parent / entry["include"])
            if not isinstance(included, dict):
                raise InputError("included file must be a mapping", file=str(file), field="include")
            entry = {**included, **entry}
            del entry["include"]
        problems.append(parse_problem({**defaults, **entry}, str(file), index))
    return problems


def parse_problem(raw: dict[str, Any], file: str, index: int = 0) -> Problem:
    """Validate one problem mapping and build the ``Problem``."""
    pid = raw.get("id")
    if not isinstance(pid, (str, int)) or str(pid).strip() == "":
        raise InputError(f"entry {index} has no 'id'", file=file, field="id")
    pid = str(pid)

    def fail(field: str, message: str) -> InputError:
        return InputError(message, file=file, problem=pid, field=field)

    unknown = set(raw) - PROBLEM_FIELDS
    if unknown:
        raise fail(sorted(unknown)[0], "unknown field")
    common = _common_fields(raw, pid, file, fail)
    has_turns, has_prompt = "turns" in raw, "prompt" in raw
    if has_turns == has_prompt:
        raise fail("turns", "a problem has either 'turns' (multi-turn) or 'prompt' (code prompt), not both or none")
    if has_prompt:
        return _code_problem(raw, common, fail)
    turns = _parse_turns(raw.get("turns"), fail)
    tests = _parse_tests(raw.get("tests"), fail)
    _check_placeholders(turns, tests, fail)
    return Problem(kind=MULTI_TURN, turns=turns, tests=tests, **common)


def _common_fields(raw: dict[str, Any], pid: str, file: str, fail: Callable[[str, str], InputError]) -> dict[str, Any]:
    """The fields every kind of problem has, checked."""
    category = raw.get("category")
    if not isinstance(category, str) or not category:
        raise fail("category", "missing or not a string")
    scorer = raw.get("scorer", "strict")
    if scorer not in SCORERS:
        raise fail("scorer", f"unknown scorer {scorer!r} (choose from {', '.join(SCORERS)})")
    max_new_tokens = _positive_int(raw.get("max_new_tokens", 128), fail, "max_new_tokens")
    timeout = raw.get("timeout", 10.0)
    if (not isinstance(timeout, (int, float)) or isinstance(timeout, bool) or not math.isfinite(timeout)
            or timeout <= 0):
        raise fail("timeout", f"must be a positive, finite number of seconds, got {timeout!r}")
    tags = raw.get("tags") or []
    if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
        raise fail("tags", "must be a list of strings")
    return dict(id=pid, category=category, source=file, tags=tuple(tags), max_new_tokens=max_new_tokens,
                timeout=float(timeout), scorer=scorer, defects=tuple(raw.get("defects") or ()),
                description=raw.get("description", ""))


def _code_problem(raw: dict[str, Any], common: dict[str, Any], fail: Callable[[str, str], InputError]) -> Problem:
    for name in ("prompt", "entry_point", "test"):
        if not isinstance(raw.get(name), str) or not raw[name].strip():
            raise fail(name, "missing or empty")
    if "def check(" not in raw["test"]:
        raise fail("test", "must define check(candidate)")
    if problem := syntax_problem(raw["test"]):  # the tests' process compiles it for every sample
        raise fail("test", f"is not valid Python ({problem})")
    reference = raw.get("reference")
    if reference is not None and not isinstance(reference, str):
        raise fail("reference", "must be a string (the completion of the prompt)")
    public = raw.get("public_tests")
    if public is not None:
        if (not isinstance(public, list) or not public
                or not all(isinstance(t, str) and t.lstrip().startswith("assert") for t in public)):
            raise fail("public_tests", "must be a list of assert statements (calling candidate)")
        for test in public:
            if problem := syntax_problem(test):
                raise fail("public_tests", f"{test[:80]!r} is not a Python statement ({problem})")
        common["public_tests"] = tuple(public)
    return Problem(kind=CODE, prompt=raw["prompt"], entry_point=raw["entry_point"], test=raw["test"],
                   reference=reference, examples_in_docstring=True, **common)


def _check_placeholders(turns: tuple[Turn, ...], tests: tuple[TestCase, ...],
                        fail: Callable[[str, str], InputError]) -> None:
    """Every test case fills every turn's prompt and reference."""
    for case_index, case in enumerate(tests):
        for turn_index, turn in enumerate(turns):
            for field, template in (("prompt", turn.prompt), ("reference", turn.reference)):
                if template is None:
                    continue
                where = f"turns[{turn_index}].{field}"
                try:
                    names = placeholders(template)
                except ValueError as exc:
                    raise fail(where, f"malformed placeholder: {exc}") from None
                missing = names - set(case.inputs)
                if missing:
                    raise fail(where, f"unknown placeholder {{{sorted(missing)[0]}}}: test case {case_index} "
                                      f"has inputs {sorted(case.inputs)}")
                try:
                    fill(template, case.inputs)
                except (LookupError, AttributeError, TypeError, ValueError) as exc:
                    raise fail(where, f"test case {case_index} cannot fill it: {exc}") from None


def _positive_int(value: Any, fail, field: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        raise fail(field, f"must be a positive integer, got {value!r}")
    return value


def _parse_turns(raw: Any, fail) -> tuple[Turn, ...]:
    if not isinstance(raw, list) or not raw:
        raise fail("turns", "must be a non-empty list")
    turns = []
    for index, item in enumerate(raw):
        if isinstance(item, str):
            item = {"prompt": item}
        if not isinstance(item, dict):
            raise fail(f"turns[{index}]", "must be a string or a mapping with 'prompt'")
        unknown = set(item) - TURN_FIELDS
        if unknown:
            raise fail(f"turns[{index}].{sorted(unknown)[0]}", "unknown field")
        prompt = item.get("prompt")
        if not isinstance(prompt, str) or not prompt.strip():
            raise fail(f"turns[{index}].prompt", "missing or empty")
        limit = item.get("max_new_tokens")
        if limit is not None:
            _positive_int(limit, fail, f"turns[{index}].max_new_tokens")
        reference = item.get("reference")
        if reference is not None and not isinstance(reference, str):
            raise fail(f"turns[{index}].reference", "must be a string")
        turns.append(Turn(prompt=prompt, max_new_tokens=limit, reference=reference))
    return tuple(turns)


def _parse_tests(raw: Any, fail) -> tuple[TestCase, ...]:
    if not isinstance(raw, list) or not raw:
        raise fail("tests", "must be a non-empty list of test cases")
    cases = []
    for index, item in enumerate(raw):
        if not isinstance(item, dict):
            raise fail(f"tests[{index}]", "must be a mapping with 'inputs' and 'expected'")
        unknown = set(item) - TEST_FIELDS
        if unknown:
            raise fail(f"tests[{index}].{sorted(unknown)[0]}", "unknown field")
        inputs = item.get("inputs", {})
        if not isinstance(inputs, dict):
            raise fail(f"tests[{index}].inputs", "must be a mapping of placeholder names to values")
        if ("expected" in item) == ("expected_literal" in item):
            raise fail(f"tests[{index}].expected", "give exactly one of 'expected' or 'expected_literal'")
        if "expected_literal" in item:
            try:
                expected = literal(str(item["expected_literal"]))
            except ValueError as exc:
                raise fail(f"tests[{index}].expected_literal", f"not a Python literal: {exc}") from None
        else:
            expected = item["expected"]
        try:
            if literal(repr(expected)) != expected and expected == expected:
                raise ValueError
        except (ValueError, RecursionError):
            raise fail(f"tests[{index}].expected", f"value {expected!r} cannot be written as a Python literal") from None
        cases.append(TestCase(inputs=dict(inputs), expected=expected))
    return tuple(cases)
