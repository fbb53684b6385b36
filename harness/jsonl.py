"""Reading JSON-lines files (published datasets, samples files, finished runs' and part files' sample lines),
gzipped or not: strictly, for a file a user gave, with errors that name the file and line, or tolerantly,
for a line a killed process may have torn."""

from __future__ import annotations

import gzip
import json
import zlib
from pathlib import Path
from typing import Any

from harness.errors import InputError


def decode_json_line(line: bytes, path: str, line_no: int) -> Any:
    """One line of a JSON-lines file a user gave, or an ``InputError`` naming the line: not UTF-8, not
    JSON, or nested too deeply for the parser."""
    try:
        return json.loads(line.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise InputError(f"line {line_no}: not UTF-8 text (byte {exc.start})", file=path) from None
    except json.JSONDecodeError as exc:
        raise InputError(f"line {line_no}: not JSON ({exc.msg})", file=path) from None
    except RecursionError:
        raise InputError(f"line {line_no}: JSON nested too deeply", file=path) from None


def json_object_or_none(line: bytes) -> dict[str, Any] | None:
    """A line's JSON object, or None for anything else: a line torn by a killed writer (cut inside a
    character or before its end), or one that is not an object."""
    try:
        record = json.loads(line.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
        return None
    return record if isinstance(record, dict) else None


def read_json_lines(path: Path, field: str | None = None) -> list[tuple[int, dict[str, Any]]]:
    """Every non-blank line's JSON object with its line number; an ``InputError`` naming the file (and
    ``field``, the option that named it) when it cannot be read or a line is not a JSON object."""
    opener = gzip.open if path.suffix == ".gz" else open
    records = []
    try:
        with opener(path, "rb") as handle:
            for line_no, line in enumerate(handle, 1):
                if line.strip():
                    record = decode_json_line(line, str(path), line_no)
                    if not isinstance(record, dict):
                        raise InputError(f"line {line_no}: not a JSON object", file=str(path))
                    records.append((line_no, record))
    except (OSError, EOFError, zlib.error) as exc:  # zlib.error: a corrupt .gz
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
        raise InputError(f"cannot read: {reason}", file=str(path), field=field) from None
    return records


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """Every non-blank line's JSON object (see ``read_json_lines``)."""
    return [record for _, record in read_json_lines(path)]


def require_fields(record: dict[str, Any], fields: tuple[str, ...], path: Path, index: int) -> None:
    for name in fields:
        if name not in record:
            raise InputError(f"record {index} lacks a required field", file=str(path),
                             problem=str(record.get("task_id", index)), field=name)
