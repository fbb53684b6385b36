"""How a backend declares itself: its name, how to build it from its options, and its options.

An option (``harness.options.Option``) is at once a ``run`` flag (``--name-with-dashes``; a switch that is on by
default is ``--no-name``), a key of a ``--config`` file and of the run folder's ``config.yaml``, and a checked
value that the backend reads from the options it is built with (``options.name``), never from the whole run
configuration. The harness's own backends are listed in ``harness.backends.registry``; a plug-in declares one the
same way (``from harness.backends.spec import BackendSpec, Option, integer``) and registers it through the
``harness.backends`` entry-point group.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from harness.generation.backend import Backend
# The option declarations a plug-in takes from here with BackendSpec (they live below the backends and the run
# configuration, which both use them).
from harness.options import OPTION_TYPES, Check, Option, boolean, choice, integer, number, optional, text, text_list

__all__ = ["OPTION_TYPES", "BackendOptions", "BackendSpec", "Check", "Option", "boolean", "choice", "integer",
           "number", "optional", "text", "text_list"]


@dataclass(frozen=True)
class BackendOptions:
    """What a backend is built from: the model it serves and the checked values of its own declared options,
    read as attributes (``options.base_url``). The run's pipeline makes it from the run configuration
    (``harness.config.make_backend``)."""

    model: str
    # Private, so that no option's name is hidden by this field's (an option named "values" reads as declared).
    _values: Mapping[str, Any] = field(default_factory=dict)

    def __getattr__(self, name: str) -> Any:
        values = self.__dict__.get("_values")  # not self._values: unpickling asks before it is set
        if values is not None and name in values:
            return values[name]
        raise AttributeError(f"a backend's options have no {name!r} (only the model and its own declared options)")


@dataclass(frozen=True)
class BackendSpec:
    """A backend: ``build(options, launch_device)`` makes it from its ``BackendOptions`` (``launch_device``:
    the GPU a launcher such as accelerate assigned to this process, if any); ``options`` are its own."""

    name: str
    help: str
    build: Callable[[BackendOptions, str | None], Backend]
    options: tuple[Option, ...] = ()
