"""The run configuration: defaults, then a YAML file (``--config``), then command-line flags."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import yaml

from harness.errors import InputError


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
    seed: int = 1234
    batch_size: int | str = 16
    kv_reuse: bool = True
    device: str = "auto"
    dtype: str = "auto"
    device_map: str | None = None
    revision: str | None = None
    prompt_format: str = "auto"
    attn_implementation: str | None = None
    load_in: str | None = None
    max_length: int | None = None
    trust_remote_code: bool = False
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

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


FIELD_NAMES = {f.name for f in fields(RunConfig)}


def load_config_file(path: str) -> dict[str, Any]:
    file = Path(path)
    try:
        data = yaml.safe_load(file.read_text(encoding="utf-8")) or {}
    except OSError as exc:
        raise InputError(f"cannot read config: {exc.strerror}", file=path) from None
    except yaml.YAMLError as exc:
        raise InputError(f"malformed YAML: {getattr(exc, 'problem', exc)}", file=path) from None
    if not isinstance(data, dict):
        raise InputError("a run config must be a mapping of option names to values", file=path)
    data = {key.replace("-", "_"): value for key, value in data.items()}
    data.pop("inputs", None)  # a run folder's config.yaml records its inputs' checksums: not options
    unknown = sorted(set(data) - FIELD_NAMES)
    if unknown:
        raise InputError("unknown option", file=path, field=unknown[0])
    return data


def build_config(file_values: dict[str, Any], flag_values: dict[str, Any], source: str = "config") -> RunConfig:
    """Flags override the file; both are checked for type and range."""
    merged = {**file_values, **{k: v for k, v in flag_values.items() if v is not None}}
    if isinstance(merged.get("k"), (int, str)):
        merged["k"] = [int(x) for x in str(merged["k"]).split(",") if x.strip()]
    if isinstance(merged.get("base_url"), str):
        merged["base_url"] = [merged["base_url"]]
    elif "base_url" in merged and merged["base_url"] is None:  # configs written before several endpoints
        merged["base_url"] = []
    if isinstance(merged.get("base_url"), list):
        merged["base_url"] = _expand_url_files(merged["base_url"], source)
    if isinstance(merged.get("problems"), str):
        merged["problems"] = [p for p in merged["problems"].split(",") if p]
    config = RunConfig(**merged)
    _check(config, source)
    return config


def _expand_url_files(values: list[Any], source: str) -> list[str]:
    """``@FILE`` stands for the URLs listed in FILE, one a line (blank lines and ``#`` comments skipped)."""
    urls: list[str] = []
    for value in values:
        if not isinstance(value, str):
            raise InputError("must be a URL or a list of URLs", file=source, field="base_url")
        if not value.startswith("@"):
            urls.append(value)
            continue
        try:
            lines = Path(value[1:]).read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError) as exc:
            raise InputError(f"cannot read the list of URLs ({exc})", file=value[1:], field="base_url") from None
        urls += [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]
    return urls


def _check(config: RunConfig, source: str) -> None:
    def require(condition: bool, option: str, message: str) -> None:
        if not condition:
            raise InputError(message, file=source, field=option)

    require(isinstance(config.n, int) and config.n >= 1, "n", "must be a positive integer")
    require(bool(config.k) and all(isinstance(k, int) and k >= 1 for k in config.k), "k",
            "must be positive integers")
    require(max(config.k) <= config.n, "k",
            f"pass@{max(config.k)} needs at least {max(config.k)} samples per problem; --n is {config.n}")
    require(isinstance(config.temperature, (int, float)) and config.temperature >= 0, "temperature",
            "must be >= 0 (0 means greedy)")
    require(isinstance(config.top_p, (int, float)) and 0 < config.top_p <= 1, "top_p", "must be in (0, 1]")
    require(config.batch_size == "auto" or (isinstance(config.batch_size, int) and config.batch_size >= 1),
            "batch_size", "must be a positive integer or 'auto'")
    require(isinstance(config.workers, int) and config.workers >= 1, "workers", "must be >= 1")
    require(config.sandbox in ("auto", "strict", "none"), "sandbox", "must be auto, strict or none")
    require(config.backend in ("huggingface", "openai"), "backend", "must be huggingface or openai")
    require(config.prompt_format in ("auto", "base", "chat"), "prompt_format", "must be auto, base or chat")
    require(config.load_in in (None, "8bit", "4bit"), "load_in", "must be 8bit or 4bit")
    require(config.max_length is None or (isinstance(config.max_length, int) and config.max_length > 1),
            "max_length", "must be an integer > 1")
    require(isinstance(config.concurrency, int) and config.concurrency >= 1, "concurrency", "must be >= 1")
    require(isinstance(config.samples_per_request, int) and config.samples_per_request >= 1, "samples_per_request",
            "must be >= 1")
    require(config.max_new_tokens is None or (isinstance(config.max_new_tokens, int) and config.max_new_tokens > 0),
            "max_new_tokens", "must be a positive integer")
    require(config.limit is None or (isinstance(config.limit, int) and config.limit > 0), "limit",
            "must be a positive integer")
