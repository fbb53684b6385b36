"""Reading YAML a user wrote (suites, run configs): libyaml's fast loader when present, and a bound on
what aliases expand to, so a "billion laughs" file is one line of error rather than gigabytes of memory.

PyYAML builds an alias as a reference to the same object, so loading such a file is cheap; the blow-up
comes later, when something walks the structure (``repr``, ``json.dumps``). We measure the document once
every alias is expanded, each value counting 1 plus the length of its text (so a few long strings
repeated count as what they expand to), sharing the size of a repeated object (linear in the distinct
objects), and refuse a document that expands beyond ``MAX_EXPANDED_SIZE`` or that refers to itself.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from harness.errors import InputError

Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
# Far above any real suite (MTPB as YAML: ~10^4 values, ~10^6 characters), far below what exhausts memory.
MAX_EXPANDED_SIZE = 50_000_000


def load_yaml_file(path: Path) -> Any:
    """The document in ``path``, or an ``InputError`` naming the file (unreadable, not UTF-8, malformed,
    nested too deeply, or expanding aliases too far)."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise InputError(f"cannot read: {exc.strerror}", file=str(path)) from None
    try:
        source = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[:exc.start].count(b"\n") + 1
        raise InputError(f"not UTF-8 text (line {line}, byte {exc.start})", file=str(path)) from None
    return load_yaml_text(source, str(path))


def load_yaml_text(source: str, file: str) -> Any:
    try:
        data = yaml.load(source, Loader=Loader)  # noqa: S506 - a safe loader
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise InputError(f"malformed YAML{where}: {problem}", file=file) from None
    except RecursionError:
        raise InputError("malformed YAML: nested too deeply", file=file) from None
    except ValueError as exc:  # an integer of more than 4,300 digits (Python's limit for int <-> text)
        raise InputError(f"malformed YAML: {' '.join(str(exc).split()[:12])}", file=file) from None
    if expanded_size(data) > MAX_EXPANDED_SIZE:
        raise InputError(f"YAML aliases expand to more than {MAX_EXPANDED_SIZE:,} values and characters", file=file)
    return data


def _scalar_size(value: Any) -> int:
    """1, plus the characters of a string or bytes (what ``repr`` and ``json.dumps`` will write out)."""
    return 1 + len(value) if isinstance(value, (str, bytes)) else 1


def expanded_size(data: Any) -> int:
    """The size of ``data`` (values, plus the characters of text) with every shared (aliased) object counted
    each time it is referred to; a self-referring document counts as infinite. Depth-first with an explicit
    stack (deep nesting cannot overflow Python's), each object's size computed once."""
    if not isinstance(data, (list, dict)):
        return _scalar_size(data)
    sizes: dict[int, int] = {}
    on_path = {id(data)}
    stack = [_frame(data)]
    while stack:
        frame = stack[-1]
        for child in frame[1]:
            if not isinstance(child, (list, dict)):
                frame[2] += _scalar_size(child)
                continue
            key = id(child)
            if key in sizes:
                frame[2] += sizes[key]
                continue
            if key in on_path:
                return MAX_EXPANDED_SIZE + 1  # a document that contains itself expands without end
            on_path.add(key)
            stack.append(_frame(child))
            break
        else:
            stack.pop()
            key = id(frame[0])
            on_path.discard(key)
            sizes[key] = frame[2]
            if frame[2] > MAX_EXPANDED_SIZE:
                return frame[2]
            if stack:
                stack[-1][2] += frame[2]
    return sizes[id(data)]


def _frame(node: list | dict) -> list:
    """[node, an iterator over its values, its size so far (itself, and a mapping's keys: scalars in YAML)]."""
    if isinstance(node, dict):
        return [node, iter(node.values()), 1 + sum(_scalar_size(key) for key in node)]
    return [node, iter(node), 1]
