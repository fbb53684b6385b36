"""Which process this is in a data-parallel launch (``accelerate launch``, ``torchrun``, SLURM via
either), and the one exchange the ranks make: rank 0's work plan, broadcast once at the start.

There is no collective per generation step: each rank works through its own batch groups and writes
them to its own file; rank 0 watches the files and merges them at the end.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from harness.errors import InputError


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
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return ProcessInfo(0, 1, None)
    import torch
    from accelerate import PartialState

    # Without a GPU, accelerate joins the launch's process group only when told the run is on the CPU;
    # otherwise every rank takes itself for a single process, rank 0 of 1, and all of them claim the folder.
    state = PartialState(cpu=cpu or not torch.cuda.is_available())
    if state.num_processes != world:
        raise InputError(f"this process sees {state.num_processes} process(es) in a launch of WORLD_SIZE={world}; "
                         "pass --device cpu (or cuda) to match the machine", field="device")
    return ProcessInfo(state.process_index, state.num_processes, str(state.device))


def broadcast_from_main(value: Any, process: ProcessInfo) -> Any:
    """Rank 0's ``value`` on every rank (a picklable object)."""
    if process.world == 1:
        return value
    from accelerate.utils import broadcast_object_list

    return broadcast_object_list([value], from_process=0)[0]
