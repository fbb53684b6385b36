"""What a run records in its folder's ``config.yaml``: the options and inputs it was started with (written
atomically, never half), their fingerprint (named by every part file), and the check that a resumed run,
a later shard or a requeued one has the same settings. The folder is handed the record (``config.as_dict()``),
never the run configuration itself."""

from __future__ import annotations

import hashlib
import json
import os
import uuid
from pathlib import Path
from typing import Any

import yaml

from harness.config import SHARD_COUNT
from harness.errors import InputError
from harness.run_files import create_new
from harness.runs.folder.fingerprints import INPUTS, changed_input
from harness.runs.folder.layout import Layout
from harness.suites.yaml_input import load_yaml_file
from sandbox.isolation import LEGACY_MODES

# Options that may change between an interrupted run and its resumption: they do not change results.
OPERATIONAL_OPTIONS = {"workers", "device", "device_map", "base_url", "concurrency", "request_timeout", "max_retries",
                       "api_key_env", "results_dir", "run_name", "overwrite", "resume", "dedup", "verdict_cache",
                       "shard", "merge_when_complete"}


def recorded_config(layout: Layout) -> dict[str, Any] | None:
    """The settings an interrupted run in this folder recorded, if any."""
    path = layout.config
    if not path.is_file():
        return None
    previous = load_yaml_file(path)
    if not isinstance(previous, dict):
        raise InputError("cannot read the interrupted run's config (not a mapping)", file=str(path))
    return previous


def fingerprint(recorded: dict[str, Any] | None) -> str:
    """The recorded config's results-relevant part (options and inputs), hashed: every part file names
    it in its first line, so parts written under another config are found before they are merged."""
    relevant = {k: v for k, v in (recorded or {}).items() if k not in OPERATIONAL_OPTIONS and k != SHARD_COUNT}
    return hashlib.sha256(json.dumps(relevant, sort_keys=True, default=repr).encode("utf-8")).hexdigest()


def as_recorded_before(layout: Layout, current: dict[str, Any]) -> dict[str, Any]:
    """``current`` without the options the interrupted run's config does not name and that are unset (None):
    options added since, which ``check_resumable`` took as unset then. Recording them would change the
    config's fingerprint, and the merge would refuse the part files written under it."""
    previous = recorded_config(layout) or {}
    return {name: value for name, value in current.items() if name in previous or value is not None}


def check_resumable(layout: Layout, current: dict[str, Any], inputs: dict[str, str | None]) -> None:
    """Refuse, with one line naming the first difference, a run whose options (``current``: the record of
    its configuration) or inputs differ from those the folder recorded, operational options aside."""
    path = layout.config
    previous = recorded_config(layout) or {}
    for name, value in current.items():
        if name not in OPERATIONAL_OPTIONS and _current_name(name, previous.get(name)) != value:
            raise InputError(f"cannot resume: this run has {name}={value!r} but the interrupted run had "
                             f"{previous.get(name)!r}; use the same settings or another --run-name",
                             file=str(path), field=name)
    if changed := changed_input(previous.get(INPUTS), inputs):
        raise InputError(f"cannot resume: {changed}; its samples were scored against the old one. Use another "
                         "--run-name or --overwrite", file=str(path), field=INPUTS)


def create_atomically(layout: Layout, content: dict[str, Any]) -> bool:
    """Write ``config.yaml`` unless it exists, never leaving it half-written; whether this process wrote it."""
    tmp = _write_temporary(layout, content)
    try:
        os.link(tmp, layout.config)
        return True
    except FileExistsError:
        return False
    finally:
        tmp.unlink()


def replace_atomically(layout: Layout, content: dict[str, Any]) -> None:
    _write_temporary(layout, content).replace(layout.config)


def _write_temporary(layout: Layout, content: dict[str, Any]) -> Path:
    tmp = layout.config_temporary(uuid.uuid4().hex[:12])
    try:
        with os.fdopen(create_new(tmp), "w", encoding="utf-8") as handle:
            yaml.safe_dump(content, handle, sort_keys=False)
            handle.flush()
            os.fsync(handle.fileno())
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise InputError(f"cannot write ({exc.strerror}); nothing was changed", file=str(layout.config),
                         field="results_dir") from None
    return tmp


def _current_name(option: str, value: Any) -> Any:
    """A value an older run recorded under the name it had then (``sandbox: strict`` is now ``full``;
    ``feedback: none`` is now recorded as no feedback, None), or did not record (runs before ``infilling_mode``
    were all PSM)."""
    if option == "feedback" and value == "none":
        return None
    if option == "infilling_mode" and value is None:
        return "psm"
    return LEGACY_MODES.get(value, value) if option == "sandbox" and isinstance(value, str) else value
