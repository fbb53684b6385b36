"""Reading JSON-lines files, gzipped or not, with errors that name the file and line."""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

from harness.errors import InputError


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    opener = gzip.open if path.suffix == ".gz" else open
    records = []
    try:
        with opener(path, "rt", encoding="utf-8") as handle:
            for line_no, line in enumerate(handle, 1):
                if line.strip():
                    try:
                        records.append(json.loads(line))
                    except json.JSONDecodeError as exc:
                        raise InputError(f"line {line_no}: not JSON ({exc.msg})", file=str(path)) from None
    except (OSError, EOFError) as exc:
        raise InputError(f"cannot read: {exc}", file=str(path)) from None
    return records


def require_fields(record: dict[str, Any], fields: tuple[str, ...], path: Path, index: int) -> None:
    for name in fields:
        if name not in record:
            raise InputError(f"record {index} lacks a required field", file=str(path),
                             problem=str(record.get("task_id", index)), field=name)
