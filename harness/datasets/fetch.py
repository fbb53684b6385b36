"""Finding a benchmark's data file: an explicit path, else a cached download, else a download from
its public location (once; the SHA-256 is checked against the published file's and recorded)."""

from __future__ import annotations

import hashlib
import logging
import os
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from harness.cache_paths import cache_root
from harness.errors import InputError

log = logging.getLogger(__name__)

MIRROR_ENV = "HARNESS_DATA_MIRROR"


@dataclass(frozen=True)
class DataFile:
    """A published data file. ``sha256`` pins the exact release this harness was checked against."""

    name: str
    filename: str
    url: str
    sha256: str | None = None


@dataclass(frozen=True)
class LocatedFile:
    path: Path
    sha256: str
    source: str  # "path", "cache" or the URL it was downloaded from

    def origin(self) -> dict[str, str]:
        return {"path": str(self.path), "sha256": self.sha256, "source": self.source}


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def locate(spec: DataFile, explicit: str | None) -> LocatedFile:
    """The data file for ``spec``. ``$HARNESS_DATA_MIRROR`` replaces the download location's folder
    (for a local mirror or a proxy)."""
    if explicit:
        path = Path(explicit).expanduser()
        if not path.is_file():
            raise InputError(f"{spec.name} data file does not exist", file=str(path), field="data")
        return LocatedFile(path, sha256_of(path), "path")
    cached = cache_root() / "data" / spec.filename
    if cached.is_file():
        return LocatedFile(cached, sha256_of(cached), "cache")
    url = spec.url
    if os.environ.get(MIRROR_ENV):
        url = os.environ[MIRROR_ENV].rstrip("/") + "/" + spec.filename
    return LocatedFile(_download(spec, url, cached), sha256_of(cached), url)


def _download(spec: DataFile, url: str, target: Path) -> Path:
    log.info("downloading %s from %s", spec.name, url)
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(target.suffix + ".part")
    try:
        with urllib.request.urlopen(url, timeout=60) as response, partial.open("wb") as handle:
            while block := response.read(1 << 20):
                handle.write(block)
    except (urllib.error.URLError, OSError) as exc:
        partial.unlink(missing_ok=True)
        raise InputError(f"cannot download {spec.name} data ({exc}); pass its file with --data PATH",
                         file=url, field="data") from None
    digest = sha256_of(partial)
    if spec.sha256 and digest != spec.sha256:
        partial.unlink(missing_ok=True)
        raise InputError(f"downloaded {spec.name} data has SHA-256 {digest}, expected {spec.sha256}",
                         file=url, field="data")
    partial.replace(target)
    log.info("%s cached at %s (sha256 %s)", spec.name, target, digest)
    return target


def hub_copy(dataset: str, config: str | None, filename: str, what: str) -> LocatedFile:
    """A dataset from the Hugging Face hub (``datasets.load_dataset``, its test split), saved as JSON lines
    in the cache so the run records a file and checksum like any other source."""
    import json

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
