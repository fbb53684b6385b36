"""The table of backends: a name -> its declaration (``harness.backends.spec.BackendSpec``).

The harness's own backends are one entry each in ``BUILT_IN`` (the module whose ``BACKEND`` declares it; a
backend module imports nothing heavy at its top, so reading the table loads no torch). Other packages add
backends through the ``harness.backends`` entry-point group: each entry point's name is the backend's
name and its object a ``BackendSpec``. The run configuration (``harness.config``) chooses the run's backend and
builds it; this module knows of the configuration only the names it is handed (``plug_ins``).
"""

from __future__ import annotations

import functools
import importlib
import logging
from importlib import metadata

from harness.backends.spec import OPTION_TYPES, BackendSpec, Option
from harness.errors import InputError
from harness.generation.backend import Backend
from harness.generation.prompt_formats import BaseCompletionFormat, ChatFormat

log = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "harness.backends"
DEFAULT_BACKEND = "huggingface"
# The ``run`` command's flags that are no option's (``harness.run_flags``; tests/test_backend_plugins.py
# checks this against the parser): a plug-in option with one of these flags would make argparse fail in
# every command.
RUN_ONLY_FLAGS = frozenset(("--help", "--config"))
BUILT_IN = {
    "huggingface": "harness.backends.huggingface.backend",
    "openai": "harness.backends.openai_compatible.backend",
    "reference": "harness.backends.reference",
}


@functools.cache
def built_in() -> dict[str, BackendSpec]:
    return {name: importlib.import_module(module).BACKEND for name, module in BUILT_IN.items()}


def built_in_options() -> list[Option]:
    """Every built-in backend's options: part of every run's config, whichever backend it uses (as before
    backends declared their options), so config files of earlier runs read and resume as they did."""
    return [option for spec in built_in().values() for option in spec.options]


@functools.cache
def plug_ins(reserved: frozenset[str], reserved_flags: frozenset[str] = frozenset()) -> dict[str, BackendSpec]:
    """The backends registered by installed packages. One that cannot be loaded, or whose name or options
    collide with the harness's, is left out with a warning, so it never breaks the other commands.
    ``reserved``: the names the run configuration has besides the backends' options, ``reserved_flags``: its
    options' flags (``--num-samples`` too); ``harness.config`` passes its own: this module does not import it."""
    taken = set(built_in()) | {option.name for option in built_in_options()} | reserved
    flags = set(RUN_ONLY_FLAGS) | reserved_flags | {flag for name in taken for flag in _flags(name)}
    found: dict[str, BackendSpec] = {}
    for entry in sorted(metadata.entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
        try:
            spec = entry.load()
        except (Exception, SystemExit) as exc:  # noqa: BLE001 (a plug-in's import can fail in any way, a
            # module that runs a script at import exits)
            log.warning("backend plug-in %s (%s) cannot be loaded, left out: %r", entry.name, entry.value, exc)
            continue
        problem = _plug_in_problem(entry.name, spec, taken, flags)
        if problem:
            log.warning("backend plug-in %s (%s) left out: %s", entry.name, entry.value, problem)
            continue
        found[entry.name] = spec
        taken |= {entry.name, *(each for option in spec.options for each in (option.name, *option.aliases))}
        flags |= {flag for option in spec.options for flag in (*_flags(option.name), *option.flags)}
    return found


def _flags(name: str) -> tuple[str, str]:
    """The flags an option of this name may have (``Option.flags``: a switch has ``--no-`` too)."""
    dashed = name.replace("_", "-")
    return f"--{dashed}", f"--no-{dashed}"


def _plug_in_problem(name: str, spec: object, taken: set[str], flags: set[str]) -> str:
    if not isinstance(spec, BackendSpec):
        return f"the entry point names a {type(spec).__name__}, not a harness.backends.spec.BackendSpec"
    if spec.name != name:
        return f"the entry point is named {name!r} but declares the backend {spec.name!r}"
    if not isinstance(spec.options, (tuple, list)) or not all(isinstance(o, Option) for o in spec.options):
        return "its options are not a list of harness.backends.spec.Option"
    if untyped := [o.name for o in spec.options if o.type not in OPTION_TYPES]:
        return f"its option {untyped[0]!r} has a type other than {', '.join(t.__name__ for t in OPTION_TYPES)}"
    clashes = sorted(taken & {name, *(each for option in spec.options for each in (option.name, *option.aliases))})
    if clashes:
        return f"{clashes[0]!r} is already a backend or an option"
    clashes = sorted(flags & {flag for option in spec.options for flag in option.flags})
    return f"its flag {clashes[0]} is already a flag of the run command" if clashes else ""


def choose_prompt_format(requested: str, backend: Backend) -> BaseCompletionFormat | ChatFormat:
    """``auto`` takes the chat format for models with a chat template (Instruct), the base one otherwise."""
    if requested == "auto":
        requested = "chat" if backend.prefers_chat else "base"
    if requested == "chat":
        if not backend.supports_chat:
            raise InputError("this model has no chat template (it is not an Instruct/chat model); use "
                             "--prompt-format base", field="prompt_format")
        return ChatFormat()
    return BaseCompletionFormat()
