"""The run configuration: defaults, then a YAML file (``--config``), then command-line flags."""

from __future__ import annotations

import urllib.parse
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from harness.runs import shards
from harness import validate_input as validate
from harness.errors import InputError
from harness.suites.yaml_input import load_yaml_file


@dataclass
class RunConfig:
    suite: str = "core"
    data: str | None = None
    exclude_defective: bool = False
    model: str = "tiny-codegen"
    backend: str = "huggingface"
    base_url: list[str] = field(default_factory=list)  # one URL per replica of the served model
    api_key_env: str = "OPENAI_API_KEY"
    concurrency: int = 8
    request_timeout: float = 120.0
    max_retries: int = 6
    samples_per_request: int = 1
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
    kv_reuse: bool = True
    device: str = "auto"
    dtype: str = "auto"
    device_map: str | None = None
    revision: str | None = None
    prompt_format: str = "auto"
    # Execution feedback (harness.runs.feedback): none (plain sampling), errors (exceptions only) or tests (also
    # failing public tests); up to max_repairs attempts more per turn. None: the suite's YAML, else none / 1.
    feedback: str | None = None
    max_repairs: int | None = None
    attn_implementation: str | None = None
    load_in: str | None = None
    max_length: int | None = None
    trust_remote_code: bool = False
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
    shard: str | None = None  # i/N, auto or auto/N: a job-array task's share of the groups (harness.runs.shards)
    merge_when_complete: bool = False  # a shard merges the run when every group is present

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


FIELD_NAMES = {f.name for f in fields(RunConfig)}
SHARD_COUNT = "shards"  # the key under which a sharded run's config.yaml records its number of shards


def load_config_file(path: str) -> dict[str, Any]:
    data = load_yaml_file(Path(path))
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise InputError("a run config must be a mapping of option names to values", file=path)
    keys = [key for key in data if not isinstance(key, str)]
    if keys:
        raise InputError(f"option names are words, got {keys[0]!r}", file=path, field=str(keys[0]))
    data = {key.replace("-", "_"): value for key, value in data.items()}
    data.pop("inputs", None)  # a run folder's config.yaml records its inputs' checksums: not options
    data.pop(SHARD_COUNT, None)  # ... and the number of shards writing it
    unknown = sorted(set(data) - FIELD_NAMES)
    if unknown:
        raise InputError("unknown option", file=path, field=unknown[0])
    return data


def build_config(file_values: dict[str, Any], flag_values: dict[str, Any], source: str = "config") -> RunConfig:
    """Flags override the file; every value is checked for type and range (and converted where a flag
    gives text: ``--k 1,10``, ``--problems a,b``)."""
    merged = {**file_values, **{k: v for k, v in flag_values.items() if v is not None}}
    checked = {name: _CHECKS[name](value, name, source) for name, value in merged.items()}
    config = RunConfig(**checked)
    if max(config.k) > config.n:
        raise InputError(f"pass@{max(config.k)} needs at least {max(config.k)} samples per problem; --n is "
                         f"{config.n}", file=source, field="k")
    if config.shard and config.overwrite:
        raise InputError("a shard never removes what the other shards wrote; overwrite the folder with a plain run "
                         "(no --shard) once no shard is live, or choose another --run-name", file=source,
                         field="overwrite")
    if config.merge_when_complete and not config.shard:
        raise InputError("is for a shard (--shard i/N); a plain run always merges", file=source,
                         field="merge_when_complete")
    return config


def _urls(value: Any, source: str) -> list[str]:
    """One URL, a list of them, or ``@FILE`` entries standing for the URLs listed in FILE, one a line
    (blank lines and ``#`` comments skipped). ``None``: configs written before several endpoints."""
    values = [] if value is None else [value] if isinstance(value, str) else value
    if not isinstance(values, list):
        raise InputError("must be a URL or a list of URLs", file=source, field="base_url")
    urls: list[str] = []
    for entry in values:
        if not isinstance(entry, str) or not entry:
            raise InputError("must be a URL or a list of URLs", file=source, field="base_url")
        if not entry.startswith("@"):
            urls.append(_url(entry, source))
            continue
        try:
            lines = Path(entry[1:]).read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError) as exc:
            raise InputError(f"cannot read the list of URLs ({exc})", file=entry[1:], field="base_url") from None
        urls += [_url(line.strip(), entry[1:]) for line in lines if line.strip() and not line.lstrip().startswith("#")]
    return urls


def _url(text: str, source: str) -> str:
    """An http(s) URL with a host and, if any, a numeric port."""
    try:
        parts = urllib.parse.urlsplit(text)
        parts.port  # noqa: B018 (raises ValueError for a port that is not a number)
    except ValueError:
        parts = None
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
        raise InputError(f"{text!r} is not an http(s) URL such as http://localhost:8000/v1", file=source,
                         field="base_url")
    return text


def _optional(check: Callable[..., Any]) -> Callable[[Any, str, str], Any]:
    return lambda value, name, source: None if value is None else check(value, name, source)


def _int(minimum: int | None = None, maximum: int | None = None) -> Callable[[Any, str, str], int]:
    return lambda value, name, source: validate.integer(value, name, minimum=minimum, maximum=maximum, file=source)


def _choice(*choices: str) -> Callable[[Any, str, str], str]:
    return lambda value, name, source: validate.text(value, name, source, choices)


def _text(value: Any, name: str, source: str) -> str:
    return validate.text(value, name, source)


def _bool(value: Any, name: str, source: str) -> bool:
    return validate.boolean(value, name, source)


def _batch_size(value: Any, name: str, source: str) -> int | str:
    return "auto" if value == "auto" else validate.integer(value, name, minimum=1, file=source)


SEED_RANGE = (0, 2**63 - 1)
# Every option's check: type, range, finiteness. Values arrive from YAML (typed) or flags (already parsed).
_CHECKS: dict[str, Callable[[Any, str, str], Any]] = {
    "suite": _text, "data": _optional(_text), "exclude_defective": _bool, "model": _text,
    "backend": _choice("huggingface", "openai"), "base_url": lambda v, n, s: _urls(v, s), "api_key_env": _text,
    "concurrency": _int(1, 4096),
    "request_timeout": lambda v, n, s: validate.number(v, n, above=0, maximum=86400, file=s),
    "max_retries": _int(0, 100), "samples_per_request": _int(1, 1024), "n": _int(1, 100_000),
    "k": lambda v, n, s: validate.integer_list(v, n, minimum=1, file=s),
    "temperature": lambda v, n, s: validate.number(v, n, minimum=0, maximum=100, file=s),
    "top_p": lambda v, n, s: validate.number(v, n, above=0, maximum=1, file=s),
    "max_new_tokens": _optional(_int(1, 1_000_000)), "max_reasoning_tokens": _optional(_int(1, 10_000_000)),
    "seed": _int(*SEED_RANGE), "batch_size": _batch_size,
    "kv_reuse": _bool, "device": _text, "dtype": _choice("auto", "bf16", "fp16", "fp32"),
    "device_map": _optional(_text), "revision": _optional(_text),
    "prompt_format": _choice("auto", "base", "chat"),
    "feedback": _optional(_choice("none", "errors", "tests")), "max_repairs": _optional(_int(0, 100)), "attn_implementation": _optional(_text),
    "load_in": _optional(_choice("8bit", "4bit")), "max_length": _optional(_int(2, 100_000_000)),
    "threads": _optional(_int(1, 4096)), "trust_remote_code": _bool,
    "problems": lambda v, n, s: validate.string_list(v, n, s), "limit": _optional(_int(1)),
    "workers": _int(1, 1024), "sandbox": _choice("auto", "strict", "none"), "sandbox_python": _optional(_text),
    "timeout": lambda v, n, s: validate.number(v, n, above=0, maximum=86400, file=s),
    "memory_mb": _int(64, 1 << 30), "dedup": _bool, "verdict_cache": _bool, "results_dir": _text,
    "run_name": _optional(validate.run_name), "overwrite": _bool, "resume": _bool,
    "shard": _optional(shards.check_spec), "merge_when_complete": _bool,
}
