"""An option declared once: its name, type, default, help and check, from which its flag
(``--name-with-dashes``; a switch also has ``--no-name``), its config-file keys, its argparse keywords and its
checked value all follow. Backends declare theirs with it (``harness.backends.spec``), and the run declares its own
with it, one record per field of the run configuration (``harness.config.RUN_OPTIONS``); below both, it imports
only the input checks."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from harness import validate_input as validate

# (value, field name, source file) -> the checked value; raises InputError naming the source and field.
Check = Callable[[Any, str, str], Any]


def optional(check: Check) -> Check:
    return lambda value, name, source: None if value is None else check(value, name, source)


def integer(minimum: int | None = None, maximum: int | None = None) -> Check:
    return lambda value, name, source: validate.integer(value, name, minimum=minimum, maximum=maximum, file=source)


def number(above: float | None = None, maximum: float | None = None, minimum: float | None = None) -> Check:
    return lambda value, name, source: validate.number(value, name, above=above, maximum=maximum, minimum=minimum,
                                                       file=source)


def choice(*choices: str) -> Check:
    return lambda value, name, source: validate.text(value, name, source, choices)


def text(value: Any, name: str, source: str) -> str:
    return validate.text(value, name, source)


def boolean(value: Any, name: str, source: str) -> bool:
    return validate.boolean(value, name, source)


def text_list(value: Any, name: str, source: str) -> list[str]:
    return validate.string_list(value, name, source)


OPTION_TYPES = (str, int, float, bool, list)
_DEFAULT_CHECKS: dict[type, Check] = {str: text, int: integer(), float: number(), bool: boolean, list: text_list}
_FLAG_TYPES: dict[type, Callable[[str], Any]] = {int: validate.integer_flag(), float: validate.number_flag()}


@dataclass(frozen=True)
class Option:
    """One option. ``type`` is str, int, float, bool or list (of text; the flag may be repeated);
    ``check`` defaults to the type's (ranges need their own: ``integer(1, 64)``), and with ``choices`` to
    one of them; a ``default`` of None makes the value optional. The rest serve the run's own options:
    ``aliases``, other names that are keys and flags too (``num_samples``: ``num-samples: 3``, ``--num-samples``);
    ``flag_type``, how a flag's text is read where the type's way does not fit (``--k 1,10``); ``group``, where
    the flag is listed in ``--help``; ``evaluate``, whether ``evaluate`` takes the option too; ``command_line``,
    whether it has a flag at all; ``recorded_after``, for a built-in backend's option, the option that
    ``config.yaml`` lists it after (its backend's next options follow it)."""

    name: str
    type: type
    default: Any
    help: str
    check: Check | None = None
    choices: tuple[str, ...] = ()
    aliases: tuple[str, ...] = ()
    flag_type: Callable[[str], Any] | None = None
    group: str = ""
    evaluate: bool = False
    command_line: bool = True
    recorded_after: str | None = None

    @property
    def flag(self) -> str:
        """The flag, ``--name-with-dashes``; a switch also has ``--no-name-with-dashes`` (argparse's
        ``BooleanOptionalAction``), so a value set in a --config file can be turned either way."""
        return "--" + self.name.replace("_", "-")

    @property
    def spellings(self) -> tuple[str, ...]:
        """The flag and its aliases' (a switch's ``--no-`` forms aside)."""
        return (self.flag, *("--" + alias.replace("_", "-") for alias in self.aliases))

    @property
    def flags(self) -> tuple[str, ...]:
        return (*self.spellings, *("--no-" + flag[2:] for flag in self.spellings)) if self.type is bool else \
            self.spellings

    def checked(self, value: Any, source: str) -> Any:
        check = self.check or (choice(*self.choices) if self.choices else _DEFAULT_CHECKS[self.type])
        return (optional(check) if self.default is None else check)(value, self.name, source)

    def argparse_kwargs(self) -> dict[str, Any]:
        """``add_argument``'s keywords. Every flag defaults to None so that a --config file's value is kept
        unless the flag is given; values are checked with the file's (``checked``)."""
        kwargs: dict[str, Any] = {"dest": self.name, "default": None, "help": self.help}
        if self.type is bool:
            kwargs["action"] = argparse.BooleanOptionalAction
        elif self.flag_type is not None:
            kwargs["type"] = self.flag_type
        elif self.type is list:
            kwargs["action"] = "append"
        elif self.choices:
            kwargs["choices"] = list(self.choices)
        elif self.type in _FLAG_TYPES:
            kwargs["type"] = _FLAG_TYPES[self.type]
        return kwargs
