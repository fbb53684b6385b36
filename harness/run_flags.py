"""The ``run`` and ``evaluate`` commands' flags, made from the options' records: the run's own
(``harness.config.RUN_OPTIONS``; ``evaluate`` takes those marked for it), then every backend's, read from the
table of backends (``harness.backends.registry``, plug-ins included, as ``harness.config.backends`` lists them).
``run``'s flags default to None so that a ``--config`` file's value is kept unless the flag is given, and each
switch has a ``--no-`` form, so that a switch the file turns either way a flag can turn back; ``harness.config``
checks the values. ``evaluate`` has no config file: its flags default to the options' defaults and are checked
as they are parsed, with the same checks."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

from harness.config import BACKENDS, EXECUTION, INPUTS, OUTPUT, RUN_OPTIONS, SAMPLING, backends
from harness.errors import InputError
from harness.options import Option

# The order ``run --help`` lists the run's own options in, group by group.
GROUPS = (INPUTS, SAMPLING, EXECUTION, OUTPUT, BACKENDS)


def add_run_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", help="YAML run config; flags given here override its values")
    known = backends()
    listing = "; ".join(f"{name}: {spec.help}" for name, spec in known.items())
    for option in sorted((o for o in RUN_OPTIONS if o.command_line), key=lambda o: GROUPS.index(o.group)):
        kwargs = option.argparse_kwargs()
        if option.name == "backend":  # the record says what it is; the table of backends, which it may be
            kwargs["help"] = f"{listing}; {option.help}"
        parser.add_argument(*option.spellings, **kwargs)
    for name, spec in known.items():
        if spec.options:
            group = parser.add_argument_group(f"options of the {name} backend")
            for option in spec.options:
                group.add_argument(*option.spellings, **option.argparse_kwargs())


def add_evaluate_options(parser: argparse.ArgumentParser, required: tuple[str, ...]) -> None:
    """The run options ``evaluate`` takes too, with their defaults; ``required``: those it must be given."""
    for option in (o for o in RUN_OPTIONS if o.evaluate):
        kwargs = {**option.argparse_kwargs(), "default": option.default}
        if option.type is not bool:
            kwargs["type"] = _checked(option, kwargs.get("type"))
        if option.name in required:
            kwargs = {**kwargs, "required": True, "default": None}
        parser.add_argument(*option.spellings, **kwargs)


def _checked(option: Option, read: Callable[[str], Any] | None) -> Callable[[str], Any]:
    """An argparse ``type=``: the flag's text read as its option reads it, then the option's own check (the one
    a run's --config value gets), so that a bad value is one usage line naming the flag."""
    def convert(value: str) -> Any:
        try:
            return option.checked(read(value) if read else value, "")
        except InputError as exc:
            raise argparse.ArgumentTypeError(exc.message) from None
    convert.__name__ = option.name  # argparse names the type in some messages
    return convert
