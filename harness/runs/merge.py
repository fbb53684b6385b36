"""``run-benchmark merge RUN_DIR``: a sharded run's results, from its folder alone. The plan (suite, data,
problems, n, batch size) is rebuilt from the folder's ``config.yaml``; the merge itself is the one a
single-process run ends with (:func:`harness.runs.finalize.merge_results`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from harness import run_files
from harness.runs.folder import claim as run_folder
from harness.config import build_config, load_config_file
from harness.errors import InputError
from harness.runs.finalize import merge_results
from harness.runs.folder.fingerprints import INPUTS, changed_input, run_inputs
from harness.generation.conversations import batch_groups, units_for
from harness.runs.folder.run_folder import RunDirectory
from harness.suites.registry import resolve_suite


def merge_run_folder(folder: Path) -> dict[str, Any] | None:
    """Merge ``folder`` under its exclusive lock (refused while any shard, run or other merge is live) and
    return the summary, or None for a run merged already (nothing to do: a merge job that runs again after a
    requeue changes nothing); every refusal is one line and leaves the folder as it was."""
    config_file = folder / "config.yaml"
    if not folder.is_dir() or not (folder / run_folder.MARKER).exists():
        raise InputError("is not a run folder that run-benchmark made", file=str(folder), field="run_dir")
    if not config_file.is_file():
        raise InputError("has no config.yaml: no shard has started there", file=str(folder), field="run_dir")
    run_files.refuse_tampering(folder, "run_dir", "give merge another RUN_DIR")
    parts = folder / run_files.PARTS
    if (folder / "summary.json").is_file() and not (parts.is_dir() and any(run_files.PART_FILE.fullmatch(p.name)
                                                                           for p in parts.iterdir())):
        return None  # merged (a file of the user's may be left in parts/)
    if not parts.is_dir():
        raise InputError("has no parts to merge (no shard has written there)", file=str(folder), field="run_dir")
    run_dir = RunDirectory(folder)
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
