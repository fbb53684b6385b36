"""Checks shared by every command for what a user types: numbers, names, booleans, and the files a
command will write. Each failure is an ``InputError`` (one line naming the file and field; exit 2).

The same checks serve flags (through :func:`flag`, which turns them into argparse types) and config-file
values, so ``--k 0`` and ``k: 0`` are refused with the same words.
"""

from __future__ import annotations

import argparse
import logging
import math
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from harness.errors import InputError
from harness.run_files import refuse_run_file
from sandbox.isolation import LEGACY_MODES, MODES

T = TypeVar("T")

RUN_NAME = re.compile(r"[A-Za-z0-9._-]{1,128}")
MAX_RUN_NAME = 128


def run_name(value: Any, field: str = "run_name", file: str | None = None) -> str:
    """One path component: letters, digits, ``._-``, at most 128 characters, not ``.`` or ``..``."""
    if not isinstance(value, str) or not RUN_NAME.fullmatch(value) or value in (".", ".."):
        shown = value if not isinstance(value, str) or len(value) <= 40 else value[:40] + "..."
        raise InputError(f"{shown!r} is not a run name: use 1-{MAX_RUN_NAME} letters, digits, '.', '_' or '-' "
                         "(one folder name, not '.' or '..')", file=file, field=field)
    return value


def integer(value: Any, field: str, *, minimum: int | None = None, maximum: int | None = None,
            file: str | None = None, from_text: bool = False) -> int:
    """An int (not a bool, not a float; text only when ``from_text``, as a flag) within [minimum, maximum]."""
    if isinstance(value, str) and from_text:
        try:
            value = int(value.strip())
        except ValueError:
            raise InputError(f"{value!r} is not an integer", file=file, field=field) from None
    if not isinstance(value, int) or isinstance(value, bool):
        raise InputError(f"{value!r} is not an integer", file=file, field=field)
    _in_range(value, field, minimum, maximum, file)
    return value


def number(value: Any, field: str, *, minimum: float | None = None, maximum: float | None = None,
           above: float | None = None, below: float | None = None, file: str | None = None,
           from_text: bool = False) -> float:
    """A finite int or float within the bounds (``above``/``below`` exclude the bound itself); text only
    when ``from_text`` (a flag)."""
    if isinstance(value, str) and from_text:
        try:
            value = float(value.strip())
        except ValueError:
            raise InputError(f"{value!r} is not a number", file=file, field=field) from None
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        raise InputError(f"{value!r} is not a number", file=file, field=field)
    if not math.isfinite(value):
        raise InputError(f"must be a finite number, got {value!r}", file=file, field=field)
    _in_range(value, field, minimum, maximum, file)
    if above is not None and not value > above:
        raise InputError(f"must be greater than {above}, got {value!r}", file=file, field=field)
    if below is not None and not value < below:
        raise InputError(f"must be less than {below}, got {value!r}", file=file, field=field)
    return float(value)


def _in_range(value: float, field: str, minimum: float | None, maximum: float | None, file: str | None) -> None:
    if minimum is not None and value < minimum:
        raise InputError(f"must be at least {minimum}, got {value!r}", file=file, field=field)
    if maximum is not None and value > maximum:
        raise InputError(f"must be at most {maximum}, got {value!r}", file=file, field=field)


def boolean(value: Any, field: str, file: str | None = None) -> bool:
    """Only YAML's true/false: ``"no"`` (a string) is an error, never silently true."""
    if not isinstance(value, bool):
        raise InputError(f"must be true or false, got {value!r}", file=file, field=field)
    return value


def text(value: Any, field: str, file: str | None = None, choices: tuple[str, ...] | None = None) -> str:
    if not isinstance(value, str):
        raise InputError(f"must be a string, got {value!r}", file=file, field=field)
    if choices is not None and value not in choices:
        raise InputError(f"must be one of {', '.join(choices)}, got {value!r}", file=file, field=field)
    return value


def integer_list(value: Any, field: str, *, minimum: int = 1, file: str | None = None) -> list[int]:
    """``"1,10"`` (a flag, or YAML text), ``[1, 10]`` or ``1`` (YAML): integers >= minimum, at least one."""
    if isinstance(value, str):
        items: list[Any] = [item for item in value.split(",") if item.strip()]
    elif isinstance(value, list):
        items = value
    else:
        items = [value]
    if not items:
        raise InputError("needs at least one integer", file=file, field=field)
    return [integer(item, field, minimum=minimum, file=file, from_text=isinstance(value, str)) for item in items]


def string_list(value: Any, field: str, file: str | None = None) -> list[str]:
    """``"a,b"`` (a flag) or ``[a, b]`` (YAML) of non-empty strings."""
    if isinstance(value, str):
        return [item for item in value.split(",") if item]
    if not isinstance(value, list) or not all(isinstance(item, str) and item for item in value):
        raise InputError(f"must be a list of names (or 'a,b,c'), got {value!r}", file=file, field=field)
    return list(value)


def flag(check: Callable[..., T], **bounds: Any) -> Callable[[str], T]:
    """An argparse ``type=`` that applies ``check`` (field name filled in by argparse's own message)."""
    def convert(value: str) -> T:
        try:
            return check(value, "", **bounds)
        except InputError as exc:
            raise argparse.ArgumentTypeError(exc.message) from None
    convert.__name__ = check.__name__  # argparse names the type in some messages
    return convert


def integer_flag(**bounds: Any) -> Callable[[str], int]:
    return flag(integer, from_text=True, **bounds)


def number_flag(**bounds: Any) -> Callable[[str], float]:
    return flag(number, from_text=True, **bounds)


def writable_folder(path: Path, field: str) -> Path:
    """A folder we can create files in (made if missing); checked before any work is done."""
    if path.exists() and not path.is_dir():
        raise InputError("exists and is not a folder", file=str(path), field=field)
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / f".write-probe-{os.getpid()}"
        probe.touch()
        probe.unlink()
    except OSError as exc:
        raise InputError(f"cannot write here ({exc.strerror})", file=str(path), field=field) from None
    return path


def writable_file(path: Path, field: str) -> Path:
    """A file we may (re)write by writing a sibling and renaming it over: the folder must take new files and
    the path must not be a folder, nor a run folder's own file. Checked before any work is done, so nothing computed is lost."""
    if path.is_dir():
        raise InputError("is a folder, not a file", file=str(path), field=field)
    refuse_run_file(path, field)
    if not path.parent.is_dir():
        raise InputError("its folder does not exist", file=str(path), field=field)
    probe = path.with_name(f".{path.name}.probe-{os.getpid()}")
    try:
        probe.touch()
        probe.unlink()
    except OSError as exc:
        raise InputError(f"cannot write here ({exc.strerror})", file=str(path), field=field) from None
    return path


MAX_SHARDS = 1_000_000


def shard_spec(value: object, name: str, source: str) -> str:
    """The spec as given (``i/N``, ``auto``, ``auto/N``), checked for form; ``auto`` is resolved later,
    from the environment of the task that runs it."""
    # ASCII digits, at most 7 (the number of shards is at most a million): "²" or 5,000 digits are no index.
    if not isinstance(value, str) or not re.fullmatch(r"([0-9]{1,7}|auto)/[0-9]{1,7}|auto", value):
        raise InputError(f"must be i/N (0 <= i < N), auto (SLURM array) or auto/N (JOB_COMPLETION_INDEX), "
                         f"got {value!r}", file=source, field=name)
    if value != "auto":
        index, count = value.split("/")
        if not 1 <= int(count) <= MAX_SHARDS:
            raise InputError(f"the number of shards must be 1 to {MAX_SHARDS}, got {value!r}", file=source,
                             field=name)
        if index != "auto" and int(index) >= int(count):
            raise InputError(f"shard index must be below the number of shards (0 to {int(count) - 1}), got "
                             f"{value!r}", file=source, field=name)
    return value


def sandbox_mode(value: Any, field: str, file: str | None = None) -> str:
    """``--sandbox``: auto, full or none; ``strict`` (full's earlier name) is read as full, with a warning."""
    if isinstance(value, str) and value in LEGACY_MODES:
        logging.getLogger("harness").warning("--sandbox %s is now called --sandbox %s", value, LEGACY_MODES[value])
        value = LEGACY_MODES[value]
    return text(value, field, file, MODES)
