"""Ending a process and everything it started, found through /proc (a stopped process included: SIGKILL
reaches it, and a PID namespace's first process takes the whole namespace with it)."""

from __future__ import annotations

import os
from collections import defaultdict


def _children() -> dict[int, list[int]]:
    tree: dict[int, list[int]] = defaultdict(list)
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as stat:
                fields = stat.read().rsplit(b")", 1)[1].split()
        except OSError:  # ended meanwhile
            continue
        tree[int(fields[1])].append(int(entry))
    return tree


def descendants(pid: int) -> list[int]:
    """``pid`` and every process below it."""
    tree = _children()
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        todo.extend(tree.get(current, ()))
    return found


def kill_tree(pid: int, signum: int) -> None:
    """Send ``signum`` to ``pid`` and its descendants, the deepest first (a parent cannot restart them)."""
    for target in reversed(descendants(pid)):
        try:
            os.kill(target, signum)
        except OSError:  # already gone, or not ours
            pass
