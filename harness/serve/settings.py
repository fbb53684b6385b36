"""The service's settings (from ``serve``'s flags) and its limits on input: plain data, no server library."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class InputLimits:
    body_bytes: int = 8 << 20
    samples: int = 1024  # programs in one request
    program_bytes: int = 256 << 10


@dataclass(frozen=True)
class Settings:
    workers: int = 2
    sandbox: str = "full"
    sandbox_python: str | None = None
    token: str | None = None
    queue: int = 1024  # jobs waiting for a worker, all clients together
    deadline_seconds: float = 120.0  # a request's default (and largest) time from arrival to answer
    max_run_timeout: float = 60.0
    timeout: float = 10.0  # /verify's floor, as evaluate's --timeout
    memory_mb: int = 4096
    verdict_cache: bool = True
    input: InputLimits = field(default_factory=InputLimits)
