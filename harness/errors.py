"""User-facing input errors: one line naming the file, the problem and the field; exit status 2."""

from __future__ import annotations


class InputError(Exception):
    """Bad input from the user (a suite, a config, a samples file, a flag)."""

    exit_code = 2

    def __init__(self, message: str, *, file: str | None = None, problem: str | None = None,
                 field: str | None = None):
        self.file = file
        self.problem = problem
        self.field = field
        self.message = message
        super().__init__(self.one_line())

    def __reduce__(self):  # picklable with its parts, so rank 0 can hand it to the other ranks
        return (_rebuild, (self.message, self.file, self.problem, self.field))

    def one_line(self) -> str:
        where = [part for part in (self.file, f"problem {self.problem}" if self.problem else None,
                                   f"field '{self.field}'" if self.field else None) if part]
        text = f"{': '.join(where)}: {self.message}" if where else self.message
        return " ".join(text.split("\n"))


def _rebuild(message: str, file: str | None, problem: str | None, field: str | None) -> InputError:
    return InputError(message, file=file, problem=problem, field=field)
