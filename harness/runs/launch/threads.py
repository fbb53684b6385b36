"""The run's intra-op thread count: on CPU another count splits matrix products differently and can change
sampled tokens, so rank 0 decides it once and every process computes with it."""

from __future__ import annotations

import logging
import os
import sys
from dataclasses import replace

from harness import validate_input as validate
from harness.config import RunConfig
from harness.runs.folder.run_folder import RunFolder

log = logging.getLogger(__name__)


def uses_torch_threads(config: RunConfig) -> bool:
    return config.backend == "huggingface" and config.model != "reference"


def with_threads(config: RunConfig, run_dir: RunFolder) -> RunConfig:
    """Rank 0: the run's intra-op thread count. ``--threads``, else what the interrupted run recorded (on
    ``--resume``), else this process's count (torch's default: the cores, or ``OMP_NUM_THREADS``)."""
    if config.threads is not None or not uses_torch_threads(config):
        return config
    previous = run_dir.recorded_config() if config.resume or config.shard else None
    if previous is not None and "threads" not in previous:
        return config  # interrupted before runs recorded their thread count: resumed as it ran, unrecorded
    recorded = (previous or {}).get("threads")
    if recorded is None:
        import torch

        recorded = torch.get_num_threads()
    return replace(config, threads=validate.integer(recorded, "threads", minimum=1,
                                                    file=str(run_dir.config_file)))


def set_threads(config: RunConfig, threads: int | None) -> RunConfig:
    """Every process computes with rank 0's thread count: on CPU another count can change samples."""
    if threads is None:
        return config
    import torch

    cores = os.cpu_count()
    if cores and threads > cores:  # kept: the count is part of the run's identity (--resume checks it)
        log.warning("--threads %d is more than this machine's %d CPU cores: generation on CPU will be slower",
                    threads, cores)
    torch.set_num_threads(threads)
    return replace(config, threads=threads)


def threads_in_use() -> int | None:
    """This process's intra-op thread count, for the summary (None when torch is not loaded)."""
    torch = sys.modules.get("torch")
    return torch.get_num_threads() if torch is not None else None
