"""Rank 0's view of every process's work: its progress bar counts their lines, and it waits for their
groups by watching their part files (no collective, so a slow rank never trips a communication timeout)."""

from __future__ import annotations

import time
from pathlib import Path

from tqdm import tqdm

from harness.runs.folder.run_folder import RunFolder
from harness.runs.launch.shards import Shard


def show_progress(progress: tqdm, run_dir: RunFolder | None, total: int, shard: Shard | None) -> None:
    """Rank 0's bar counts every process's lines (of its shard), read from their part files."""
    if run_dir is not None and not progress.disable:
        progress.n = min(total, run_dir.count_lines(shard))
        progress.refresh()


def wait_for_groups(run_dir: RunFolder, members: list[set[str]], needed: set[int], earlier_files: set[Path],
                    progress: tqdm, total: int, shard: Shard | None) -> None:
    """Rank 0 waits for the other processes' groups (``needed``: the run's, or its shard's) by watching their
    files. A launcher ends the whole job if a rank dies. Sandbox failures in ``earlier_files`` are being
    redone, so they do not count as done."""
    seen = -1
    while True:
        written = run_dir.count_lines(shard)
        if written != seen:  # parse the files again only when some process has appended to them
            seen = written
            if needed <= run_dir.done_groups(members, stale=earlier_files).keys():
                progress.n = total
                progress.refresh()
                return
            progress.n = min(total, written)
            progress.refresh()
        time.sleep(0.5)
