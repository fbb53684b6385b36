"""The Hugging Face hub's copy of a published data file, when its download fails: the one module of the harness
that imports ``datasets`` (a contract in pyproject.toml keeps it so), loaded only when the hub is asked."""

from __future__ import annotations

import json

from harness.cache_paths import cache_root
from harness.errors import InputError
from harness.suites.datasets.fetch import LocatedFile, sha256_of


def hub_copy(dataset: str, config: str | None, filename: str, what: str) -> LocatedFile:
    """A dataset from the Hugging Face hub (``datasets.load_dataset``, its test split), saved as JSON lines
    in the cache so the run records a file and checksum like any other source."""
    import datasets

    try:
        rows = datasets.load_dataset(dataset, config, split="test")
    except Exception as exc:
        raise InputError(f"{what} is not available here ({exc}); pass its file with --data PATH",
                         field="data") from None
    target = cache_root() / "data" / filename
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text("".join(json.dumps(dict(row)) + "\n" for row in rows), encoding="utf-8")
    return LocatedFile(target, sha256_of(target), f"hub:{dataset}" + (f"/{config}" if config else ""))


def hub_fallback(no_download: InputError, dataset: str, config: str | None, filename: str, what: str) -> LocatedFile:
    """The hub's copy when the download failed; if the hub fails too, one line says why both failed."""
    try:
        return hub_copy(dataset, config, filename, what)
    except InputError as no_hub:
        raise InputError(f"{no_download.message}; {no_hub.message}", file=no_download.file,
                         field="data") from None
