"""Finding a benchmark's data file: an explicit path, else a cached download, else a download from
its public location (once). Every file, whichever way it came, is checked against the release it claims
to be: its SHA-256 against the pinned one (or, where the release's checksum is not pinned, a cached copy
against the checksum recorded when it was downloaded). A cached copy that
changed since is fetched again (or refused); a ``--data`` file that differs is used, with a warning and
``matches_release: false`` in the run's summary."""

from __future__ import annotations

import hashlib
import logging
import os
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

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
    release_sha256: str | None = None
    # True: the pinned release's bytes; False: it differs from the release; None: cannot tell (no pin).
    matches_release: bool | None = None

    def origin(self) -> dict[str, Any]:
        return {"path": str(self.path), "sha256": self.sha256, "source": self.source,
                "release_sha256": self.release_sha256, "matches_release": self.matches_release}


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def checked(spec: DataFile, path: Path, source: str) -> LocatedFile:
    """``path`` as ``spec``'s data, compared with the pinned release; a difference is logged as a warning."""
    digest = sha256_of(path)
    matches = None if spec.sha256 is None else digest == spec.sha256
    if matches is False:
        log.warning("%s data %s is NOT the pinned release: SHA-256 %s, the release's is %s; scores on it are not "
                    "comparable with published ones (recorded as matches_release: false)", spec.name, path, digest,
                    spec.sha256)
    return LocatedFile(path, digest, source, spec.sha256, matches)


def locate(spec: DataFile, explicit: str | None) -> LocatedFile:
    """The data file for ``spec``. ``$HARNESS_DATA_MIRROR`` replaces the download location's folder
    (for a local mirror or a proxy)."""
    if explicit:
        path = Path(explicit).expanduser()
        if not path.is_file():
            raise InputError(f"{spec.name} data file does not exist", file=str(path), field="data")
        return checked(spec, path, "path")
    cached = cache_root() / "data" / spec.filename
    url = spec.url
    if os.environ.get(MIRROR_ENV):
        url = os.environ[MIRROR_ENV].rstrip("/") + "/" + spec.filename
    try:
        if cached.is_file():
            expected = spec.sha256 or _recorded_sha256(cached)
            digest = sha256_of(cached)
            if expected is None or digest == expected:
                return LocatedFile(cached, digest, "cache", spec.sha256, None if spec.sha256 is None else True)
            _set_aside_tampered(spec, cached, digest, expected, url)
        _download(spec, url, cached)
        return LocatedFile(cached, sha256_of(cached), url, spec.sha256, None if spec.sha256 is None else True)
    except OSError as exc:  # a cache folder that cannot be read or written
        raise InputError(f"cannot use the data cache ({exc.strerror or exc})", file=str(cached.parent),
                         field="HARNESS_CACHE") from None


def _recorded_sha256(cached: Path) -> str | None:
    """The checksum written beside a download whose release checksum is not pinned."""
    record = cached.with_name(cached.name + ".sha256")
    if not record.is_file():
        return None
    return record.read_text(encoding="utf-8").strip() or None


def _set_aside_tampered(spec: DataFile, cached: Path, digest: str, expected: str, url: str) -> None:
    """A cached file changed after it was downloaded: warn loudly and keep it aside (not deleted, so it can
    be inspected); the caller fetches the release again, and a failed download refuses the run."""
    aside = cached.with_name(cached.name + ".tampered")
    log.warning("CACHED %s DATA WAS CHANGED AFTER DOWNLOAD: %s has SHA-256 %s, expected %s; moved to %s "
                "and fetching the release again from %s", spec.name.upper(), cached, digest, expected, aside, url)
    cached.replace(aside)


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
        aside = target.with_name(target.name + ".tampered")
        why = f"the cached copy was changed after download (kept as {aside}) and " if aside.exists() else ""
        raise InputError(f"{why}cannot download {spec.name} data ({exc}); pass its file with --data PATH",
                         file=url, field="data") from None
    digest = sha256_of(partial)
    if spec.sha256 and digest != spec.sha256:
        partial.unlink(missing_ok=True)
        raise InputError(f"downloaded {spec.name} data has SHA-256 {digest}, expected {spec.sha256}",
                         file=url, field="data")
    partial.replace(target)
    if spec.sha256 is None:  # later uses of the cached copy are checked against what was downloaded
        target.with_name(target.name + ".sha256").write_text(digest + "\n", encoding="utf-8")
    log.info("%s cached at %s (sha256 %s)", spec.name, target, digest)
    return target
