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


def state(pid: int) -> str:
    """The process's state letter (``T``: stopped by a signal), or ``""`` when it has ended."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            return stat.read().rsplit(b")", 1)[1].split()[0].decode()
    except (OSError, IndexError):
        return ""


def stopped_below(pid: int) -> bool:
    """Whether a child of ``pid`` is stopped. The child of a sandbox's bubblewrap is its server, the first process
    of its PID namespace, which no program inside can stop: only someone outside did."""
    return any(state(child) in ("T", "t") for child in children_of(pid))


def children_of(pid: int) -> list[int]:
    """From the kernel's own list where it keeps one (cheap: the watchdog asks twice a second per worker)."""
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as listing:
            return [int(child) for child in listing.read().split()]
    except (OSError, ValueError):
        return list(_children().get(pid, ()))


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
