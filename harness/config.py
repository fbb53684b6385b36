"""The run configuration: defaults, then a YAML file (``--config``), then command-line flags; and the backend it
asks for, built from the model and that backend's own options (``make_backend``)."""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from harness import validate_input as validate
from harness.backends.registry import DEFAULT_BACKEND, ENTRY_POINT_GROUP, built_in, built_in_options, plug_ins
from harness.backends.spec import BackendOptions, BackendSpec
from harness.errors import InputError
from harness.generation.backend import Backend
from harness.options import boolean, choice, integer, optional, text
from harness.suites.yaml_input import load_yaml_file


@dataclass
class RunConfig:
    suite: str = "core"
    data: str | None = None
    exclude_defective: bool = False
    model: str = "tiny-codegen"
    backend: str = DEFAULT_BACKEND
    n: int = 1
    k: list[int] = field(default_factory=lambda: [1])
    temperature: float = 0.2
    top_p: float = 0.95
    max_new_tokens: int | None = None
    # Chat format: tokens a thinking model may reason before its answer, on top of the answer's budget; a
    # reply that reasons longer counts as no answer (harness.generation.conversations). None: reasoning
    # shares the answer's budget.
    max_reasoning_tokens: int | None = None
    seed: int = 1234
    batch_size: int | str = 16
    prompt_format: str = "auto"
    infilling_mode: str = "psm"  # Code Llama infilling: prefix-suffix-middle or suffix-prefix-middle order
    # A paper's published setting (harness.presets), and the options where this run departs from it.
    preset: str | None = None
    preset_deviations: dict[str, Any] = field(default_factory=dict)
    # Execution feedback (harness.feedback): none (plain sampling), errors (exceptions only) or tests (also
    # failing public tests); up to max_repairs attempts more per turn. None: the suite's YAML, else none / 1.
    feedback: str | None = None
    max_repairs: int | None = None
    # torch's intra-op threads: on CPU, matrix products split differently with another count, which can
    # change samples, so it is part of a run's identity (None: the launching process's count).
    threads: int | None = None
    problems: list[str] = field(default_factory=list)
    limit: int | None = None
    workers: int = 2
    sandbox: str = "auto"
    sandbox_python: str | None = None
    timeout: float = 10.0
    memory_mb: int = 4096
    dedup: bool = True
    verdict_cache: bool = True
    results_dir: str = "results"
    run_name: str | None = None
    overwrite: bool = False
    resume: bool = False
    shard: str | None = None  # i/N, auto or auto/N: a job-array task's share of the groups (harness.runs.launch.shards)
    merge_when_complete: bool = False  # a shard merges the run when every group is present
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
        order = {name: index for index, name in enumerate(_RECORDED_ORDER)}
        return {name: values[name] for name in sorted(values, key=lambda name: order.get(name, len(order)))}


CORE_FIELD_NAMES = tuple(f.name for f in fields(RunConfig) if f.name != "options")
# Options any config may have: the run's own and the built-in backends' (a plug-in's: ``known_names()``).
FIELD_NAMES = set(CORE_FIELD_NAMES) | {option.name for option in built_in_options()}
# The order config.yaml has always listed the options in (files of earlier runs read the same; a new option
# takes its place beside its kin); a plug-in backend's options come last.
_RECORDED_ORDER = (
    "suite", "data", "exclude_defective", "model", "backend", "base_url", "api_key_env", "concurrency",
    "request_timeout", "max_retries", "samples_per_request", "n", "k", "temperature", "top_p", "max_new_tokens",
    "max_reasoning_tokens", "seed", "batch_size", "max_rows", "kv_reuse", "device", "dtype", "device_map", "revision",
    "gguf_file", "prompt_format", "feedback", "max_repairs", "attn_implementation", "load_in", "max_length",
    "trust_remote_code", "infilling_mode", "preset", "preset_deviations",
    "threads", "problems", "limit", "workers", "sandbox", "sandbox_python", "timeout", "memory_mb", "dedup",
    "verdict_cache", "results_dir", "run_name", "overwrite", "resume", "shard", "merge_when_complete")


def known_names() -> set[str]:
    """Every option name a config may have, with the installed plug-in backends'."""
    return FIELD_NAMES | {option.name for spec in plug_ins(RESERVED_NAMES).values() for option in spec.options}


SHARD_COUNT = "shards"  # the key under which a sharded run's config.yaml records its number of shards
# What a run folder's config.yaml records besides the options: its inputs' checksums, the number of shards.
RECORDED_KEYS = ("inputs", SHARD_COUNT)
# Names a plug-in backend's options may not take: the run's own options, and the other keys its config.yaml
# records (an option named like one would make a run whose config.yaml never reads back, so never resumes).
RESERVED_NAMES = frozenset((*CORE_FIELD_NAMES, *RECORDED_KEYS))


def backends() -> dict[str, BackendSpec]:
    """The backends a run may use: the built-in ones, then the installed plug-ins (``harness.backends.registry``)."""
    return {**built_in(), **plug_ins(RESERVED_NAMES)}


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
# Flags whose name is not their option's (``--num-samples`` sets n): a config key may be spelled either way.
FLAG_ALIASES = {"num_samples": "n"}


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
    declared = [*built_in_options(), *(o for spec in plug_ins(RESERVED_NAMES).values() for o in spec.options)]
    switches = {name for name, check in _CHECKS.items() if check is boolean} | {
        option.name for option in declared if option.type is bool}
    options: dict[str, Any] = {}
    for key, value in data.items():
        name = key.replace("-", "_")
        name = FLAG_ALIASES.get(name, name)
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
    backend = backend_spec(_CHECKS["backend"](merged.get("backend", DEFAULT_BACKEND), "backend", source), source)
    options = {option.name: option for option in [*built_in_options(), *backend.options]}
    core = {name: _CHECKS[name](value, name, source) for name, value in merged.items() if name in _CHECKS}
    for name in sorted(set(merged) - set(core) - set(options)):
        owners = [spec.name for spec in plug_ins(RESERVED_NAMES).values() if name in {o.name for o in spec.options}]
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


def _batch_size(value: Any, name: str, source: str) -> int | str:
    return "auto" if value == "auto" else validate.integer(value, name, minimum=1, file=source)


SEED_RANGE = (0, 2**63 - 1)
# Every option's check: type, range, finiteness. Values arrive from YAML (typed) or flags (already parsed).
_CHECKS: dict[str, Callable[[Any, str, str], Any]] = {
    "suite": text, "data": optional(text), "exclude_defective": boolean, "model": text,
    "backend": text, "n": integer(1, 100_000),
    "k": lambda v, n, s: validate.integer_list(v, n, minimum=1, file=s),
    "temperature": lambda v, n, s: validate.number(v, n, minimum=0, maximum=100, file=s),
    "top_p": lambda v, n, s: validate.number(v, n, above=0, maximum=1, file=s),
    "max_new_tokens": optional(integer(1, 1_000_000)),
    "max_reasoning_tokens": optional(integer(1, 10_000_000)), "seed": integer(*SEED_RANGE), "batch_size": _batch_size,
    "prompt_format": choice("auto", "base", "chat"), "infilling_mode": choice("psm", "spm"),
    "feedback": optional(choice("none", "errors", "tests")), "max_repairs": optional(integer(0, 100)),
    "threads": optional(integer(1, 4096)),
    "problems": lambda v, n, s: validate.string_list(v, n, s), "limit": optional(integer(1)),
    "workers": integer(1, 1024), "sandbox": validate.sandbox_mode, "sandbox_python": optional(text),
    "timeout": lambda v, n, s: validate.number(v, n, above=0, maximum=86400, file=s),
    "memory_mb": integer(64, 1 << 30), "dedup": boolean, "verdict_cache": boolean, "results_dir": text,
    "run_name": optional(validate.run_name), "overwrite": boolean, "resume": boolean,
    "shard": optional(validate.shard_spec), "merge_when_complete": boolean,
    "preset": optional(text), "preset_deviations": lambda v, n, s: _mapping(v, n, s),
}


def _mapping(value: Any, name: str, source: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise InputError("must be a mapping", file=source, field=name)
    return value
