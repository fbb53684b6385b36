"""Where generation time goes, phase by phase (tokenize, prefill, decode, sampling, stop detection,
detokenize), so the next optimisation is chosen from data (``benchmarks/perf/generation_throughput.py``).

A lap costs one ``perf_counter`` call. On a GPU the work is asynchronous, so without ``synchronize`` the
time of a kernel shows up in the phase that first waits for its result (sampling's ``tolist``);
benchmarks pass ``torch.cuda.synchronize`` to attribute it where it is spent.
"""

from __future__ import annotations

import time
from collections.abc import Callable

PHASES = ("tokenize", "prefill", "decode", "sampling", "stop_detection", "detokenize")


class PhaseClock:
    def __init__(self, synchronize: Callable[[], None] | None = None):
        self.seconds = dict.fromkeys(PHASES, 0.0)
        self._synchronize = synchronize
        self._last = time.perf_counter()

    def start(self) -> None:
        """Begins timing; whatever happened since the last lap belongs to no phase."""
        self._last = time.perf_counter()

    def lap(self, phase: str) -> None:
        """The time since the last lap (or ``start``) was spent in ``phase``."""
        if self._synchronize is not None:
            self._synchronize()
        now = time.perf_counter()
        self.seconds[phase] = self.seconds.get(phase, 0.0) + now - self._last
        self._last = now

    def split(self) -> str:
        total = sum(self.seconds.values()) or 1.0
        return ", ".join(f"{phase} {seconds:.2f} s ({100 * seconds / total:.0f}%)"
                         for phase, seconds in self.seconds.items() if seconds)
