"""The run configuration: defaults, then a YAML file (``--config``), then command-line flags; and the backend it
asks for, built from the model and that backend's own options (``make_backend``)."""

from __future__ import annotations

import argparse
import copy
from dataclasses import MISSING, asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from harness import validate_input as validate
from harness.backends.registry import DEFAULT_BACKEND, ENTRY_POINT_GROUP, built_in, built_in_options, plug_ins
from harness.backends.spec import BackendOptions, BackendSpec
from harness.errors import InputError
from harness.generation.backend import Backend
from harness.options import Option, integer, number, text_list
from harness.suites.yaml_input import load_yaml_file


def _option(default: Any, help: str, kind: type | None = None, **record: Any) -> Any:
    """A field of ``RunConfig`` that is at once its option's one record (``RUN_OPTIONS``): the field's name and
    default are the option's, ``kind`` its type (the default's type unless the default is None), ``record`` the
    rest of ``harness.options.Option`` (its check, flag group, aliases, whether ``evaluate`` takes it, ...)."""
    made = {"default_factory": lambda: copy.deepcopy(default)} if isinstance(default, (list, dict)) else {
        "default": default}
    return field(**made, metadata={"option": {"type": kind or type(default), "help": help, **record}})


def _batch_size(value: Any, name: str, source: str) -> int | str:
    return "auto" if value == "auto" else validate.integer(value, name, minimum=1, file=source)


def _batch_size_flag(value: str) -> int | str:
    if value == "auto":
        return value
    try:
        return int(value)
    except ValueError:
        raise argparse.ArgumentTypeError("must be a positive integer or 'auto'") from None


def _mapping(value: Any, name: str, source: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise InputError("must be a mapping", file=source, field=name)
    return value


SEED_RANGE = (0, 2**63 - 1)
INPUTS, SAMPLING, EXECUTION, OUTPUT, BACKENDS = "inputs", "sampling", "execution", "output", "backends"


@dataclass
class RunConfig:
    """A run's settings. Each field is declared once, as its option (``_option``), in the order ``config.yaml``
    has always recorded them (a new option takes its place beside its kin); the built-in backends' options are
    recorded among them (``Option.recorded_after``), a plug-in backend's last."""

    suite: str = _option("core", "suite name (see `run-benchmark list`) or path to a suite folder/YAML file",
                         group=INPUTS, evaluate=True)
    data: str | None = _option(None, "the suite's data file (mtpb.jsonl, HumanEval.jsonl.gz, mbpp.jsonl, ...) "
                               "instead of the bundled, cached or downloaded copy", str, group=INPUTS, evaluate=True)
    exclude_defective: bool = _option(False, "leave out problems whose published data is defective (MTPB: 1, 38, "
                                      "41, 46, 57, 89)", group=INPUTS)
    model: str = _option("tiny-codegen", "hub id, local path, FILE.gguf, smollm2-135m-instruct, tiny-codegen, "
                         "tiny-llama, tiny-llama-instruct, or reference; with --backend openai, the served model's "
                         "name", group=INPUTS)
    backend: str = _option(DEFAULT_BACKEND, f"the backend that generates (default {DEFAULT_BACKEND})",
                           group=BACKENDS)
    n: int = _option(1, "samples per problem and test case (default 1); under torchrun write --num-samples, since "
                     "torchrun takes --n for one of its own options", check=integer(1, 100_000),
                     aliases=("num_samples",), group=SAMPLING)
    k: list[int] = _option([1], "comma-separated k values for pass@k (default 1)", group=SAMPLING, evaluate=True,
                           check=lambda v, n, s: validate.integer_list(v, n, minimum=1, file=s), flag_type=str)
    temperature: float = _option(0.2, "sampling temperature; 0 means greedy (default 0.2)",
                                 check=number(minimum=0, maximum=100), group=SAMPLING)
    top_p: float = _option(0.95, "nucleus sampling (default 0.95)", check=number(above=0, maximum=1),
                           group=SAMPLING)
    max_new_tokens: int | None = _option(None, "override every turn's token budget", int,
                                         check=integer(1, 1_000_000), group=SAMPLING)
    max_reasoning_tokens: int | None = _option(
        None, "chat format: a thinking model's own reasoning budget, on top of the answer's; a reply that reasons "
        "longer counts as no answer (default: reasoning shares the answer's budget)", int,
        check=integer(1, 10_000_000), group=SAMPLING)
    seed: int = _option(1234, "run seed; each sample's seed derives from it and the sample's identity",
                        check=integer(*SEED_RANGE), group=SAMPLING)
    batch_size: int | str = _option(16, "conversations generated together (default 16); 'auto': groups of 64, "
                                    "halved on out-of-memory until they fit", check=_batch_size,
                                    flag_type=_batch_size_flag, group=SAMPLING)
    prompt_format: str = _option(
        "auto", "auto (default): the chat template for models that have one (Instruct), else plain completion; "
        "base: MTPB comment turns / code completion; chat: each turn a user message, code taken from the reply's "
        "```python blocks (with --backend openai: the /chat/completions endpoint)", choices=("auto", "base", "chat"),
        group=SAMPLING)
    feedback: str | None = _option(
        None, "execution feedback: none (default: plain sampling), errors (after each turn the program so far "
        "runs; an exception goes back to the model, which writes the turn again), tests (also failing public tests "
        "of code prompts, with expected and actual values); default: the suite's, else none", str,
        choices=("none", "errors", "tests"), group=SAMPLING)
    max_repairs: int | None = _option(None, "attempts more per turn after feedback (default: the suite's, else 1)",
                                      int, check=integer(0, 100), group=SAMPLING)
    infilling_mode: str = _option("psm", "infilling suites: psm (default; <PRE> prefix <SUF> suffix <MID>) or spm "
                                  "(<PRE> <SUF> suffix <MID> prefix), with Code Llama's token ids as Meta's "
                                  "reference builds them", choices=("psm", "spm"), group=SAMPLING)
    preset: str | None = _option(None, "a paper's published setting (`run-benchmark list --presets`); --config "
                                 "values and flags override it and are recorded as deviations", str, group=INPUTS)
    preset_deviations: dict[str, Any] = _option({}, "the options where this run departs from its preset",
                                                check=_mapping, command_line=False)
    # On CPU, matrix products split differently with another thread count, which can change samples, so it is
    # part of a run's identity.
    threads: int | None = _option(None, "torch intra-op threads in every process (default: this process's count, "
                                  "or the interrupted run's with --resume); on CPU another count can change "
                                  "samples, so it is recorded and checked on resume", int, check=integer(1, 4096),
                                  group=SAMPLING)
    problems: list[str] = _option([], "comma-separated problem ids or shell-style patterns to run ('core/he-*')",
                                  check=text_list, flag_type=str, group=INPUTS)
    limit: int | None = _option(None, "run only the first N problems", int, check=integer(1), group=INPUTS)
    workers: int = _option(2, "parallel sandbox workers (default 2)", check=integer(1, 1024), group=EXECUTION,
                           evaluate=True)
    sandbox: str = _option("auto", "isolation: auto (default; warns about missing layers), full (refuse without "
                           "all), none", check=validate.sandbox_mode, flag_type=validate.flag(validate.sandbox_mode),
                           group=EXECUTION, evaluate=True)
    sandbox_python: str | None = _option(None, "interpreter that runs the programs (needs numpy/pandas for some "
                                         "suites)", str, group=EXECUTION, evaluate=True)
    timeout: float = _option(10.0, "floor of the per-program limit in seconds (default 10; evalplus's is 1)",
                             check=number(above=0, maximum=86400), group=EXECUTION, evaluate=True)
    memory_mb: int = _option(4096, "address-space limit per program in MB, 64 or more (default 4096)",
                             check=integer(64, 1 << 30), group=EXECUTION, evaluate=True)
    dedup: bool = _option(True, "execute a program identical to another sample's once (default); --no-dedup "
                          "executes every sample", group=EXECUTION, evaluate=True)
    verdict_cache: bool = _option(True, "reuse verdicts from earlier runs (default; cache in "
                                  "$HARNESS_CACHE/verdicts.sqlite); --no-verdict-cache does not", group=EXECUTION,
                                  evaluate=True)
    results_dir: str = _option("results", "where run folders go (default results/)", group=OUTPUT, evaluate=True)
    run_name: str | None = _option(None, "name of this run's folder (default: suite-model-settings-time)", str,
                                   check=validate.run_name, group=OUTPUT, evaluate=True)
    overwrite: bool = _option(False, "replace a finished run folder that run-benchmark wrote (never a live one)",
                              group=OUTPUT, evaluate=True)
    resume: bool = _option(False, "continue an interrupted run in --run-name's folder (any number of processes); "
                           "refused if the settings differ", group=OUTPUT)
    shard: str | None = _option(
        None, "i/N: run only the batch groups g with g mod N == i, as one task of a job array, into the shared "
        "--run-name folder (no process group; continues from its part files when rerun); auto: i and N from "
        "SLURM_ARRAY_TASK_ID/_MIN/_COUNT; auto/N: i from JOB_COMPLETION_INDEX (Kubernetes Indexed Job). "
        "`run-benchmark merge` then writes the results", str, check=validate.shard_spec, group=OUTPUT)
    merge_when_complete: bool = _option(False, "with --shard: the shard that finishes last, with every group "
                                        "present, merges the run", group=OUTPUT)
    # The backends' options (declared with each backend, harness.backends.registry), read as attributes:
    # ``config.base_url``. Every built-in backend's, and a plug-in's own when it is the run's backend; the
    # backend itself is given its own alone (``make_backend``).
    options: dict[str, Any] = field(default_factory=lambda: {o.name: copy.deepcopy(o.default)
                                                             for o in built_in_options()})

    def __getattr__(self, name: str) -> Any:
        options = self.__dict__.get("options")  # not self.options: unpickling asks before it is set
        if options is not None and name in options:
            return options[name]
        raise AttributeError(f"{type(self).__name__!r} has no option {name!r}")

    def as_dict(self) -> dict[str, Any]:
        """Every option by name, flat, as ``config.yaml`` and ``summary.json`` record it."""
        values = asdict(self)
        values.update(values.pop("options"))
        order = _RECORDED_ORDER  # a plug-in backend's options, which it does not list, come last
        return {name: values[name] for name in sorted(values, key=lambda name: order.get(name, len(order)))}


RUN_OPTIONS: tuple[Option, ...] = tuple(
    Option(f.name, default=f.default_factory() if f.default is MISSING else f.default, **f.metadata["option"])
    for f in fields(RunConfig) if "option" in f.metadata)
_RUN_OPTION = {option.name: option for option in RUN_OPTIONS}
CORE_FIELD_NAMES = tuple(_RUN_OPTION)
# Options any config may have: the run's own and the built-in backends' (a plug-in's: ``known_names()``).
FIELD_NAMES = set(CORE_FIELD_NAMES) | {option.name for option in built_in_options()}


def _recorded_order() -> dict[str, int]:
    """Each option's place in config.yaml: the run's own in their order, each built-in backend's after the
    option it names (``recorded_after``) or its backend's option before it; a plug-in's come last."""
    order = list(CORE_FIELD_NAMES)
    for spec in built_in().values():
        previous = None
        for option in spec.options:
            anchor = option.recorded_after or previous
            order.insert(order.index(anchor) + 1 if anchor else len(order), option.name)
            previous = option.name
    return {name: index for index, name in enumerate(order)}


_RECORDED_ORDER = _recorded_order()


def known_names() -> set[str]:
    """Every option name a config may have, with the installed plug-in backends'."""
    return FIELD_NAMES | {option.name for spec in _plug_ins().values() for option in spec.options}


SHARD_COUNT = "shards"  # the key under which a sharded run's config.yaml records its number of shards
# What a run folder's config.yaml records besides the options: its inputs' checksums, the number of shards.
RECORDED_KEYS = ("inputs", SHARD_COUNT)
# Names a plug-in backend's options may not take: the run's own options, and the other keys its config.yaml
# records (an option named like one would make a run whose config.yaml never reads back, so never resumes).
RESERVED_NAMES = frozenset((*CORE_FIELD_NAMES, *RECORDED_KEYS))
RESERVED_FLAGS = frozenset(flag for option in RUN_OPTIONS for flag in option.flags)


def _plug_ins() -> dict[str, BackendSpec]:
    return plug_ins(RESERVED_NAMES, RESERVED_FLAGS)


def backends() -> dict[str, BackendSpec]:
    """The backends a run may use: the built-in ones, then the installed plug-ins (``harness.backends.registry``)."""
    return {**built_in(), **_plug_ins()}


def backend_spec(name: str, source: str = "config") -> BackendSpec:
    known = backends()
    if name not in known:
        raise InputError(f"unknown backend {name!r} (known: {', '.join(known)}; plug-ins register through the "
                         f"{ENTRY_POINT_GROUP!r} entry-point group)", file=source, field="backend")
    return known[name]


def make_backend(config: RunConfig, launch_device: str | None = None) -> Backend:
    """The backend the config asks for (``--model reference`` is the reference backend, whatever
    ``--backend`` says), built from the model and its own options, not from the whole configuration."""
    spec = backend_spec("reference" if config.model == "reference" else config.backend)
    options = BackendOptions(config.model, {option.name: config.options[option.name] for option in spec.options})
    return spec.build(options, launch_device)


def load_config_file(path: str) -> dict[str, Any]:
    data = load_yaml_file(Path(path))
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise InputError("a run config must be a mapping of option names to values", file=path)
    keys = [key for key in data if not isinstance(key, str)]
    if keys:
        raise InputError(f"option names are words, got {keys[0]!r}", file=path, field=str(keys[0]))
    data = _option_keys(data, path)
    for key in RECORDED_KEYS:  # a run folder's config.yaml, given back as a config: not options
        data.pop(key, None)
    unknown = sorted(set(data) - known_names())
    if unknown:
        raise InputError("unknown option", file=path, field=unknown[0])
    return data


def _option_keys(data: dict[str, Any], path: str) -> dict[str, Any]:
    """Keys named like the flags, as the README says: ``num-samples: 3`` is ``n: 3``, ``no-dedup: true`` is
    ``dedup: false``; an option given under two of its names is refused."""
    declared = [*RUN_OPTIONS, *built_in_options(),
                *(o for spec in _plug_ins().values() for o in spec.options)]
    switches = {option.name for option in declared if option.type is bool}
    aliases = {alias: option.name for option in declared for alias in option.aliases}
    options: dict[str, Any] = {}
    for key, value in data.items():
        name = key.replace("-", "_")
        name = aliases.get(name, name)
        if name.startswith("no_") and name[3:] in switches:
            name, value = name[3:], validate.boolean(value, key, path) is False
        if name in options:
            raise InputError(f"is the same option as {name!r}, given twice", file=path, field=key)
        options[name] = value
    return options


def build_config(file_values: dict[str, Any], flag_values: dict[str, Any], source: str = "config") -> RunConfig:
    """Flags override the file; every value is checked for type and range (and converted where a flag
    gives text: ``--k 1,10``, ``--problems a,b``)."""
    merged = {**file_values, **{k: v for k, v in flag_values.items() if v is not None}}
    backend = backend_spec(_RUN_OPTION["backend"].checked(merged.get("backend", DEFAULT_BACKEND), source), source)
    options = {option.name: option for option in [*built_in_options(), *backend.options]}
    core = {name: _RUN_OPTION[name].checked(value, source) for name, value in merged.items() if name in _RUN_OPTION}
    for name in sorted(set(merged) - set(core) - set(options)):
        owners = [spec.name for spec in _plug_ins().values() if name in {o.name for o in spec.options}]
        raise InputError(f"is an option of backend {owners[0]}, not of {backend.name}" if owners else
                         "unknown option", file=source, field=name)
    config = RunConfig(**core, options={name: option.checked(merged.get(name, option.default), source)
                                        for name, option in options.items()})
    if max(config.k) > config.n:
        raise InputError(f"pass@{max(config.k)} needs at least {max(config.k)} samples per problem; --n is "
                         f"{config.n}", file=source, field="k")
    if config.max_reasoning_tokens is not None and config.prompt_format == "base":
        raise InputError("is a chat model's reasoning budget; the base format has none (use --prompt-format chat "
                         "or auto)", file=source, field="max_reasoning_tokens")
    if config.shard and config.overwrite:
        raise InputError("a shard never removes what the other shards wrote; overwrite the folder with a plain run "
                         "(no --shard) once no shard is live, or choose another --run-name", file=source,
                         field="overwrite")
    if config.merge_when_complete and not config.shard:
        raise InputError("is for a shard (--shard i/N); a plain run always merges", file=source,
                         field="merge_when_complete")
    return config
