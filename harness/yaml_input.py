"""Reading YAML a user wrote (suites, run configs): libyaml's fast loader when present, and a bound on
what aliases expand to, so a "billion laughs" file is one line of error rather than gigabytes of memory.

PyYAML builds an alias as a reference to the same object, so loading such a file is cheap; the blow-up
comes later, when something walks the structure (``repr``, ``json.dumps``). We count the values the
document holds once every alias is expanded, sharing the count of a repeated object (linear in the
distinct objects), and refuse a document that expands to more than ``MAX_EXPANDED_VALUES`` or that
refers to itself.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from harness.errors import InputError

Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
# Far above any real suite (MTPB as YAML: ~10^4 values), far below what exhausts memory.
MAX_EXPANDED_VALUES = 5_000_000


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
    if expanded_size(data) > MAX_EXPANDED_VALUES:
        raise InputError(f"YAML aliases expand to more than {MAX_EXPANDED_VALUES:,} values", file=file)
    return data


def expanded_size(data: Any) -> int:
    """Values in ``data`` with every shared (aliased) object counted each time it is referred to; a
    self-referring document counts as infinite. Iterative, so deep nesting cannot overflow the stack."""
    sizes: dict[int, int] = {}
    in_progress: set[int] = set()
    stack: list[tuple[Any, bool]] = [(data, False)]
    while stack:
        node, children_done = stack.pop()
        if not isinstance(node, (list, dict)):
            continue
        key = id(node)
        if children_done:
            children = list(node.keys()) + list(node.values()) if isinstance(node, dict) else node
            sizes[key] = 1 + sum(sizes.get(id(c), 1) if isinstance(c, (list, dict)) else 1 for c in children)
            in_progress.discard(key)
            if sizes[key] > MAX_EXPANDED_VALUES:
                return sizes[key]
            continue
        if key in sizes:
            continue
        if key in in_progress:
            return MAX_EXPANDED_VALUES + 1  # a document that contains itself expands without end
        in_progress.add(key)
        stack.append((node, True))
        children = node.values() if isinstance(node, dict) else node
        stack.extend((child, False) for child in children if isinstance(child, (list, dict)))
    return sizes.get(id(data), 1)
