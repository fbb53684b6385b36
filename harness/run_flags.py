"""The ``run`` command's flags: the run's own, then every backend's, read from the table of backends
(``harness.backends.registry``, plug-ins included, as ``harness.config.backends`` lists them). Each flag defaults
to None so that a ``--config`` file's value is kept unless the flag is given, and each switch has a ``--no-``
form, so that a switch the file turns on a flag can turn off; ``harness.config`` checks the values."""

from __future__ import annotations

import argparse

from harness import validate_input as validate
from harness.backends.registry import DEFAULT_BACKEND
from harness.config import backends


def add_run_options(parser: argparse.ArgumentParser) -> None:
    _add_inputs(parser)
    _add_sampling(parser)
    _add_execution(parser)
    _add_output(parser)
    _add_backends(parser)


def _add_inputs(parser: argparse.ArgumentParser) -> None:
    add = parser.add_argument
    add("--config", help="YAML run config; flags given here override its values")
    add("--preset", help="a paper's published setting (`run-benchmark list --presets`); --config values and flags "
                         "override it and are recorded as deviations")
    add("--suite", help="suite name (see `run-benchmark list`) or path to a suite folder/YAML file")
    add("--data", help="the suite's data file (mtpb.jsonl, HumanEval.jsonl.gz, mbpp.jsonl, ...) instead of the "
                       "bundled, cached or downloaded copy")
    add("--exclude-defective", action=argparse.BooleanOptionalAction, default=None,
        help="leave out problems whose published data is defective (MTPB: 1, 38, 41, 46, 57, 89)")
    add("--model", help="hub id, local path, FILE.gguf, smollm2-135m-instruct, tiny-codegen, tiny-llama, "
                        "tiny-llama-instruct, or reference; with --backend openai, the served model's name")
    add("--problems", help="comma-separated problem ids or shell-style patterns to run ('core/he-*')")
    add("--limit", type=int_flag, help="run only the first N problems")


def _add_sampling(parser: argparse.ArgumentParser) -> None:
    add = parser.add_argument
    add("--n", "--num-samples", dest="n", type=int_flag,
        help="samples per problem and test case (default 1); under torchrun write --num-samples, since "
             "torchrun takes --n for one of its own options")
    add("--k", help="comma-separated k values for pass@k (default 1)")
    add("--temperature", type=float_flag, help="sampling temperature; 0 means greedy (default 0.2)")
    add("--top-p", type=float_flag, help="nucleus sampling (default 0.95)")
    add("--max-new-tokens", type=int_flag, help="override every turn's token budget")
    add("--max-reasoning-tokens", type=int_flag,
        help="chat format: a thinking model's own reasoning budget, on top of the answer's; a reply that reasons "
             "longer counts as no answer (default: reasoning shares the answer's budget)")
    add("--seed", type=int_flag, help="run seed; each sample's seed derives from it and the sample's identity")
    add("--batch-size", type=_batch_size,
        help="conversations generated together (default 16); 'auto': groups of 64, halved on out-of-memory "
             "until they fit")
    add("--prompt-format", choices=["auto", "base", "chat"],
        help="auto (default): the chat template for models that have one (Instruct), else plain completion; "
             "base: MTPB comment turns / code completion; chat: each turn a user message, code taken from the "
             "reply's ```python blocks (with --backend openai: the /chat/completions endpoint)")
    add("--infilling-mode", choices=["psm", "spm"],
        help="infilling suites: psm (default; <PRE> prefix <SUF> suffix <MID>) or spm (<PRE> <SUF> suffix <MID> "
             "prefix), with Code Llama's token ids as Meta's reference builds them")
    add("--feedback", choices=["none", "errors", "tests"],
        help="execution feedback: none (default: plain sampling), errors (after each turn the program so far "
             "runs; an exception goes back to the model, which writes the turn again), tests (also failing "
             "public tests of code prompts, with expected and actual values); default: the suite's, else none")
    add("--max-repairs", type=int_flag, help="attempts more per turn after feedback (default: the suite's, else 1)")
    add("--threads", type=int_flag,
        help="torch intra-op threads in every process (default: this process's count, or the interrupted run's "
             "with --resume); on CPU another count can change samples, so it is recorded and checked on resume")


def _add_execution(parser: argparse.ArgumentParser) -> None:
    add = parser.add_argument
    add("--workers", type=int_flag, help="parallel sandbox workers (default 2)")
    add("--sandbox", type=validate.flag(validate.sandbox_mode),
        help="isolation: auto (default; warns about missing layers), full (refuse without all), none")
    add("--sandbox-python", help="interpreter that runs the programs (needs numpy/pandas for some suites)")
    add("--timeout", type=float_flag, help="floor of the per-program limit in seconds (default 10)")
    add("--memory-mb", type=int_flag, help="address-space limit per program in MB, 64 or more (default 4096)")
    add("--dedup", action=argparse.BooleanOptionalAction, default=None,
        help="execute a program identical to another sample's once (default); --no-dedup executes every sample")
    add("--verdict-cache", action=argparse.BooleanOptionalAction, default=None,
        help="reuse verdicts from earlier runs (default; cache in $HARNESS_CACHE/verdicts.sqlite); "
             "--no-verdict-cache does not")


def _add_output(parser: argparse.ArgumentParser) -> None:
    add = parser.add_argument
    add("--results-dir", help="where run folders go (default results/)")
    add("--run-name", help="name of this run's folder (default: suite-model-settings-time)")
    add("--overwrite", action=argparse.BooleanOptionalAction, default=None, help="replace an existing run folder")
    add("--resume", action=argparse.BooleanOptionalAction, default=None,
        help="continue an interrupted run in --run-name's folder (any number of processes); refused if the "
             "settings differ")
    add("--shard", help="i/N: run only the batch groups g with g mod N == i, as one task of a job array, into the "
                        "shared --run-name folder (no process group; continues from its part files when rerun); "
                        "auto: i and N from SLURM_ARRAY_TASK_ID/_MIN/_COUNT; auto/N: i from JOB_COMPLETION_INDEX "
                        "(Kubernetes Indexed Job). `run-benchmark merge` then writes the results")
    add("--merge-when-complete", action=argparse.BooleanOptionalAction, default=None,
        help="with --shard: the shard that finishes last, with every group present, merges the run")


def _add_backends(parser: argparse.ArgumentParser) -> None:
    """``--backend`` and every backend's own options, from the table of backends (plug-ins included)."""
    known = backends()
    parser.add_argument("--backend", help="; ".join(f"{name}: {spec.help}" for name, spec in known.items())
                        + f" (default {DEFAULT_BACKEND})")
    for name, spec in known.items():
        if spec.options:
            group = parser.add_argument_group(f"options of the {name} backend")
            for option in spec.options:
                group.add_argument(option.flag, **option.argparse_kwargs())


def _batch_size(value: str) -> int | str:
    if value == "auto":
        return value
    try:
        return int(value)
    except ValueError:
        raise argparse.ArgumentTypeError("must be a positive integer or 'auto'") from None


# Any integer / finite number: ranges are checked with the config file's values (harness.config).
int_flag = validate.integer_flag()
float_flag = validate.number_flag()
