"""Where the harness keeps things between runs (built tiny models, the verdict cache)."""

from __future__ import annotations

import os
from pathlib import Path

from harness.errors import InputError


def cache_root() -> Path:
    """``$HARNESS_CACHE``, else ``$XDG_CACHE_HOME/program-synthesis-harness`` (``~/.cache/...``); made if
    missing, and refused with one line when it cannot be a folder."""
    if os.environ.get("HARNESS_CACHE"):
        root, source = Path(os.environ["HARNESS_CACHE"]), "HARNESS_CACHE"
    else:
        root = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "program-synthesis-harness"
        source = "cache folder"
    if root.exists() and not root.is_dir():
        raise InputError(f"{source} {str(root)!r} exists and is not a folder", field="HARNESS_CACHE")
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"cannot create {source} {str(root)!r} ({exc.strerror})", field="HARNESS_CACHE") from None
    return root
