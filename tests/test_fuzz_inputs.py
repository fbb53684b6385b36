"""Fuzzing what a user types and writes: the CLI's argument parsing (with the run config it builds), the
config loader, the suite loader and the samples reader get random bytes and random structures. Nothing
may escape but a one-line ``InputError`` (exit status 2) or a usage error (exit status 2); what is
accepted must be well-formed. In-process and bounded, so it takes seconds."""

from __future__ import annotations

import contextlib
import io
import math
import tempfile
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from harness.cli import parser
from harness.commands import run_config
from harness.config import FIELD_NAMES, RunConfig, build_config, load_config_file
from harness.errors import InputError
from harness.runs.evaluate import conversations_from_samples, read_samples
from harness.suites.loader import PROBLEM_FIELDS, TEST_FIELDS, TURN_FIELDS, load_suite
from harness.suites.registry import resolve_suite

FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
CORE = resolve_suite("core")

scalars = st.one_of(st.none(), st.booleans(), st.integers(-2**70, 2**70), st.floats(allow_nan=True),
                    st.text(max_size=12))
values = st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                      st.dictionaries(st.text(max_size=8), inner, max_size=4)),
                      max_leaves=12)


@contextlib.contextmanager
def a_file(data: bytes, name: str = "input"):
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / name
        path.write_bytes(data)
        yield path


def only_input_errors(call) -> Any:
    """``call()``'s value, or None after an InputError whose text is one line; anything else fails."""
    try:
        return call()
    except InputError as exc:
        assert "\n" not in exc.one_line() and exc.one_line().strip()
        return None


def well_formed(config: RunConfig) -> None:
    for name, value in config.as_dict().items():
        if isinstance(value, float):
            assert math.isfinite(value), name
    assert all(isinstance(k, int) and not isinstance(k, bool) and 1 <= k <= config.n for k in config.k)
    assert isinstance(config.overwrite, bool) and isinstance(config.resume, bool)
    assert config.run_name is None or ("/" not in config.run_name and config.run_name not in (".", ".."))


FLAGS = ["run", "evaluate", "compare", "report", "validate", "import", "list", "--k", "--n", "--timeout",
         "--memory-mb", "--temperature", "--top-p", "--seed", "--batch-size", "--run-name", "--overwrite",
         "--resume", "--max-drop", "--alpha", "--workers", "--threads", "--problems", "--limit", "--suite",
         "--samples", "--baseline", "--candidate", "--out", "-q", "--help", "--version", "nan", "inf", "-1",
         "0", "1", "1,x", "..", "auto", "core", "x" * 200]


@FUZZ
@given(st.lists(st.one_of(st.sampled_from(FLAGS), st.text(max_size=10)), max_size=8))
def test_command_line_parsing(argv):
    stderr = io.StringIO()
    with contextlib.redirect_stderr(stderr), contextlib.redirect_stdout(io.StringIO()):
        try:
            args = parser().parse_args(argv)
        except SystemExit as exc:
            assert exc.code in (0, 2)
            if exc.code == 2:
                lines = stderr.getvalue().strip().splitlines()
                assert len(lines) == 1 and lines[0].startswith("error:"), stderr.getvalue()
            return
    if args.command == "run" and not args.config:
        config = only_input_errors(lambda: run_config(args))
        if config is not None:
            well_formed(config)


@FUZZ
@given(st.binary(max_size=300))
def test_config_file_bytes(data):
    with a_file(data, "run.yaml") as path:
        only_input_errors(lambda: build_config(load_config_file(str(path)), {}, str(path)))


@FUZZ
@given(st.dictionaries(st.one_of(st.sampled_from(sorted(FIELD_NAMES)), st.text(max_size=6), st.integers()),
                       values, max_size=6))
def test_config_file_structures(mapping):
    with a_file(yaml.safe_dump(mapping).encode(), "run.yaml") as path:
        config = only_input_errors(lambda: build_config(load_config_file(str(path)), {}, str(path)))
    if config is not None:
        well_formed(config)


def write_suite(folder: Path, problem: bytes, suite_yaml: bytes | None) -> None:
    (folder / "p.yaml").write_bytes(problem)
    if suite_yaml is not None:
        (folder / "suite.yaml").write_bytes(suite_yaml)


@FUZZ
@given(st.binary(max_size=300), st.one_of(st.none(), st.binary(max_size=100)))
def test_suite_bytes(problem, suite_yaml):
    with tempfile.TemporaryDirectory() as folder:
        write_suite(Path(folder), problem, suite_yaml)
        only_input_errors(lambda: load_suite(folder))


turn = st.one_of(st.text(max_size=20), st.dictionaries(st.sampled_from(sorted(TURN_FIELDS)), values, max_size=3))
test_case = st.dictionaries(st.sampled_from(sorted(TEST_FIELDS)), values, max_size=3)
problem = st.fixed_dictionaries(
    {"id": st.one_of(st.text(max_size=6), st.integers())},
    optional={**{name: values for name in sorted(PROBLEM_FIELDS - {"id", "include"})},
              "category": st.one_of(st.just("c"), values),
              "turns": st.one_of(values, st.lists(turn, max_size=3)),
              "tests": st.one_of(values, st.lists(test_case, max_size=3))})
suite_meta = st.dictionaries(st.sampled_from(["name", "description", "scorer", "defaults", "program_prefix",
                                              "sandbox_preload", "exclude_if_defective", "imported_from"]),
                             values, max_size=4)


@FUZZ
@given(st.one_of(problem, st.lists(problem, max_size=3), values), st.one_of(st.none(), suite_meta))
def test_suite_structures(problems, meta):
    with tempfile.TemporaryDirectory() as folder:
        write_suite(Path(folder), yaml.safe_dump(problems).encode(),
                    None if meta is None else yaml.safe_dump(meta).encode())
        suite = only_input_errors(lambda: load_suite(folder))
    if suite is not None:
        for loaded in suite.problems:
            for case in range(loaded.num_cases if loaded.tests else 0):
                loaded.filled_turns(case)  # every accepted placeholder fills


def samples_of(path: Path) -> None:
    conversations_from_samples(CORE, str(path), read_samples(str(path)))


@FUZZ
@given(st.binary(max_size=300))
def test_samples_bytes(data):
    with a_file(data, "samples.jsonl") as path:
        only_input_errors(lambda: samples_of(path))


sample = st.fixed_dictionaries({}, optional={
    "task_id": st.one_of(st.sampled_from([p.id for p in CORE.problems]), values),
    "completion": values, "completions": st.one_of(values, st.lists(st.text(max_size=10), max_size=6)),
    "case": values})


@FUZZ
@given(st.lists(st.one_of(sample, values), min_size=1, max_size=4))
def test_samples_structures(records):
    import json

    text = "\n".join(json.dumps(record, allow_nan=True) for record in records) + "\n"
    with a_file(text.encode(), "samples.jsonl") as path:
        only_input_errors(lambda: samples_of(path))


@pytest.mark.parametrize("data", [b"[" * 5000 + b"]" * 5000, b"a: &a [*a, *a]\n", b"\xff\xfe", b"{s: {s: }}"])
def test_known_nasty_config_files(data):
    """Seeds the fuzzers would take long to find: deep nesting, a self-referring alias, not UTF-8."""
    with a_file(data, "run.yaml") as path:
        only_input_errors(lambda: build_config(load_config_file(str(path)), {}, str(path)))
