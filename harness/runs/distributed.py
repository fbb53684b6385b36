"""Which process this is in a data-parallel launch (``accelerate launch``, ``torchrun``, SLURM via
either), and the one exchange the ranks make: rank 0's work plan, broadcast once at the start.

There is no collective per generation step: each rank works through its own batch groups and writes
them to its own file; rank 0 watches the files and merges them at the end.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class ProcessInfo:
    rank: int
    world: int
    device: str | None  # the device accelerate assigned to this rank; None when not launched

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def current_process(cpu: bool) -> ProcessInfo:
    """This process's place in the launch. Single-process runs never touch torch.distributed."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return ProcessInfo(0, 1, None)
    from accelerate import PartialState

    state = PartialState(cpu=cpu)
    return ProcessInfo(state.process_index, state.num_processes, str(state.device))


def broadcast_from_main(value: Any, process: ProcessInfo) -> Any:
    """Rank 0's ``value`` on every rank (a picklable object)."""
    if process.world == 1:
        return value
    from accelerate.utils import broadcast_object_list

    return broadcast_object_list([value], from_process=0)[0]
