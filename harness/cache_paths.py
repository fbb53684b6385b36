"""Where the harness keeps things between runs (built tiny models, the verdict cache)."""

from __future__ import annotations

import os
from pathlib import Path


def cache_root() -> Path:
    """``$HARNESS_CACHE``, else ``$XDG_CACHE_HOME/program-synthesis-harness`` (``~/.cache/...``)."""
    if os.environ.get("HARNESS_CACHE"):
        return Path(os.environ["HARNESS_CACHE"])
    base = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    return base / "program-synthesis-harness"
