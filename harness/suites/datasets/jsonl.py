"""Reading JSON-lines files, gzipped or not, with errors that name the file and line."""

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


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    opener = gzip.open if path.suffix == ".gz" else open
    records = []
    try:
        with opener(path, "rb") as handle:
            for line_no, line in enumerate(handle, 1):
                if line.strip():
                    record = decode_json_line(line, str(path), line_no)
                    if not isinstance(record, dict):
                        raise InputError(f"line {line_no}: not a JSON object", file=str(path))
                    records.append(record)
    except (OSError, EOFError, zlib.error) as exc:  # zlib.error: a corrupt .gz
        raise InputError(f"cannot read: {exc}", file=str(path)) from None
    return records


def require_fields(record: dict[str, Any], fields: tuple[str, ...], path: Path, index: int) -> None:
    for name in fields:
        if name not in record:
            raise InputError(f"record {index} lacks a required field", file=str(path),
                             problem=str(record.get("task_id", index)), field=name)
