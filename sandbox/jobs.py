"""What crosses the pool: the job handed to a sandbox server (``Job``, with its ``Limits``) and the verdict
that comes back (``Execution``). Below both the pool (``sandbox.pool``) and the scorers' table
(``sandbox.scorers``), which build, send and decide them."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Limits:
    """Hard limits for one execution. ``wall_seconds`` is measured by the server, not the harness."""

    wall_seconds: float = 10.0
    cpu_seconds: float = 10.0
    memory_mb: int = 4096
    file_size_mb: int = 64
    open_files: int = 256
    processes: int = 64
    output_bytes: int = 1_000_000
    # CPU for a code prompt's tests' process, when it needs more than the program (None: ``cpu_seconds``).
    tests_cpu_seconds: float | None = None


@dataclass(frozen=True)
class Job:
    """One program to run, with everything that decides its verdict. ``mode`` is ``print_value`` (the
    first argument of the last ``print`` is compared with ``expected`` by ``scorer``: ``strict`` or
    ``mtpb``), ``assert`` (``test`` runs with ``entry_point`` and ``names`` bound to the program's
    functions; ``helpers`` is trusted code the tests may use, e.g. the prompt's ``poly``) or ``evalplus``
    (``test`` is JSON: base and plus inputs and ``atol``; ``helpers`` is the reference program).
    What of it crosses into the sandbox, and to which process, is the scorer's business
    (``sandbox.scorers``): the expected value and the tests never reach the program's process."""

    program: str
    mode: str
    limits: Limits
    test: str = ""
    entry_point: str = ""
    expected: str = ""
    scorer: str = "strict"
    program_timeout: float | None = None
    turn_line_starts: tuple[int, ...] = ()
    helpers: str = ""
    names: tuple[str, ...] = ()

    @property
    def scorer_name(self) -> str:
        return self.scorer if self.mode == "print_value" else self.mode


@dataclass(frozen=True)
class Execution:
    """The verdict of one job. ``origin`` says where it came from: ``run`` (executed for this job),
    ``duplicate`` (an identical job of the same run was executed) or ``cache`` (the verdict cache)."""

    passed: bool
    status: str
    reason: str
    turn: int | None
    stdout: str
    stderr: str
    duration: float
    origin: str = "run"
    tiers: dict[str, bool] | None = None  # HumanEval+: {"base": ..., "plus": ...}, decided with the verdict
    cpu_seconds: float | None = None  # the program's process's CPU time (None: not measured)
    line: int | None = None  # printed-value jobs: the program's line that raised (execution feedback names it)
