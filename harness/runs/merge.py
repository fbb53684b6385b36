"""``run-benchmark merge RUN_DIR``: a sharded run's results, from its folder alone. The plan (suite, data,
problems, n, batch size) is rebuilt from the folder's ``config.yaml``; the merge itself is the one a
single-process run ends with (:func:`harness.runs.finalize.merge_results`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from harness.config import build_config, load_config_file
from harness.errors import InputError
from harness.runs.finalize import merge_results
from harness.runs.folder.fingerprints import INPUTS, changed_input, run_inputs
from harness.generation.conversations import batch_groups, units_for
from harness.runs.folder.run_folder import RunFolder
from harness.suites.registry import resolve_suite


def merge_run_folder(folder: Path) -> dict[str, Any] | None:
    """Merge ``folder`` under its exclusive lock (refused while any shard, run or other merge is live) and
    return the summary, or None for a run merged already (nothing to do: a merge job that runs again after a
    requeue changes nothing); every refusal is one line and leaves the folder as it was."""
    run_dir = RunFolder(folder)
    if not run_dir.mergeable():
        return None  # merged already
    config_file = run_dir.config_file
    run_dir.lock_for_merge()
    try:
        config = build_config(load_config_file(str(config_file)), {}, source=str(config_file))
        suite = resolve_suite(config.suite, config.data)
        problems = suite.select_problems(config.problems, config.limit, config.exclude_defective)
        recorded = run_dir.recorded_config() or {}
        if changed := changed_input(recorded.get(INPUTS), run_inputs(suite, problems)):
            raise InputError(f"cannot merge: {changed}; the shards' samples were scored against the old one",
                             file=str(config_file), field=INPUTS)
        groups = batch_groups(units_for(problems, config.n), config.batch_size)
        return merge_results(run_dir, config, suite, problems, groups)
    finally:
        run_dir.release_locks()  # nothing left to release after a merge
