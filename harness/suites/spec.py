"""What a benchmark declares to be run by name (``--suite NAME``): its name, a line of help for
``run-benchmark list`` and its loader. Each benchmark's module ends with its ``SuiteSpec``; the registry
(``harness.suites.registry``) is a table of where they are, as backends declare a ``BackendSpec``."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from harness.suites.problems import Suite


@dataclass(frozen=True)
class SuiteSpec:
    name: str
    help: str
    # ``--data`` (a path, or None: the benchmark finds its data itself) -> the loaded suite.
    load: Callable[[str | None], Suite]
