"""Job-array shards: which share of a run's batch groups this task takes (``--shard i/N``, or ``auto`` from
SLURM array or Kubernetes Indexed Job variables). A shard needs no process group: it takes the groups
``g`` with ``g mod N == i`` and writes its own part files into the shared run folder."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import Mapping

from harness.errors import InputError



@dataclass(frozen=True)
class Shard:
    index: int
    count: int

    def owns(self, group: int) -> bool:
        return group % self.count == self.index

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"


def resolve(spec: str | None, environ: Mapping[str, str] = os.environ) -> Shard | None:
    """This task's shard, or None for a plain run."""
    if spec is None:
        return None
    if spec == "auto":
        task, first, count = (environ.get(v) for v in ("SLURM_ARRAY_TASK_ID", "SLURM_ARRAY_TASK_MIN",
                                                         "SLURM_ARRAY_TASK_COUNT"))
        if task is None or count is None:
            raise InputError("--shard auto needs SLURM_ARRAY_TASK_ID and SLURM_ARRAY_TASK_COUNT (a SLURM job "
                             "array); elsewhere give --shard i/N, or auto/N with JOB_COMPLETION_INDEX",
                             field="shard")
        index, total = _number(task, "SLURM_ARRAY_TASK_ID") - _number(first or "0", "SLURM_ARRAY_TASK_MIN"), \
            _number(count, "SLURM_ARRAY_TASK_COUNT")
    else:
        given, count = spec.split("/")
        total = int(count)
        if given != "auto":
            index = int(given)
        elif (value := environ.get("JOB_COMPLETION_INDEX")) is None:
            raise InputError("--shard auto/N needs JOB_COMPLETION_INDEX (a Kubernetes Indexed Job)", field="shard")
        else:
            index = _number(value, "JOB_COMPLETION_INDEX")
    if not 0 <= index < total:
        raise InputError(f"this task's shard index {index} is not below the number of shards {total} (a job "
                         "array with gaps in its task ids?)", field="shard")
    return Shard(index, total)


def _number(value: str, variable: str) -> int:
    if not re.fullmatch(r"[0-9]{1,7}", value.strip()):  # "²".isdigit() is true, and int("²") fails
        raise InputError(f"environment variable {variable} must be a whole number, got {value!r}", field="shard")
    return int(value)
