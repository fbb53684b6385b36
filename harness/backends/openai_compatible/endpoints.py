"""Several replicas of one served model (vLLM, SGLang, TGI behind several URLs): which one takes the next
request.

Each request goes to the least-loaded healthy endpoint (fewest requests in flight), preferring one that has
not already failed this request. An endpoint that fails ``set_aside_after`` requests in a row is set aside
for a cool-down that doubles each time (up to ``max_cooldown``) and is then tried again; one success
returns it to full health. When every endpoint is set aside, the one whose cool-down ends first is tried.
"""

from __future__ import annotations

import threading
import time
import urllib.parse
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.errors import InputError


@dataclass
class Endpoint:
    url: str
    in_flight: int = 0
    requests: int = 0
    failures: int = 0
    failing_in_a_row: int = 0
    times_set_aside: int = 0
    set_aside_until: float = 0.0
    last_error: str = ""


class EndpointPool:
    def __init__(self, urls: list[str], set_aside_after: int = 3, cooldown: float = 15.0, max_cooldown: float = 240.0):
        self.endpoints = [Endpoint(url) for url in urls]
        self.set_aside_after = set_aside_after
        self.cooldown = cooldown
        self.max_cooldown = max_cooldown
        self._lock = threading.Lock()

    def acquire(self, failed_here: set[str]) -> Endpoint:
        """The endpoint for the next attempt of a request that has already failed on ``failed_here``."""
        with self._lock:
            now = time.monotonic()
            healthy = [e for e in self.endpoints if e.set_aside_until <= now]
            fresh = [e for e in healthy if e.url not in failed_here]
            if fresh or healthy:
                chosen = min(fresh or healthy, key=lambda e: (e.in_flight, e.requests))
            else:
                chosen = min(self.endpoints, key=lambda e: e.set_aside_until)
            chosen.in_flight += 1
            chosen.requests += 1
            return chosen

    def untried_healthy(self, failed_here: set[str]) -> bool:
        """Whether an attempt could go to a healthy endpoint this request has not failed on yet."""
        now = time.monotonic()
        return any(e.set_aside_until <= now and e.url not in failed_here for e in self.endpoints)

    def release(self, endpoint: Endpoint, error: str | None = None) -> None:
        with self._lock:
            endpoint.in_flight -= 1
            if error is None:
                endpoint.failing_in_a_row = 0
                endpoint.set_aside_until = 0.0
                return
            endpoint.failures += 1
            endpoint.failing_in_a_row += 1
            endpoint.last_error = error
            if endpoint.failing_in_a_row >= self.set_aside_after:
                pause = min(self.max_cooldown, self.cooldown * 2 ** endpoint.times_set_aside)
                endpoint.times_set_aside += 1
                endpoint.failing_in_a_row = 0
                endpoint.set_aside_until = time.monotonic() + pause

    def usage(self) -> dict[str, dict[str, Any]]:
        """Per endpoint: requests sent, failures, times set aside, the last error (for the summary)."""
        return {e.url: {"requests": e.requests, "failures": e.failures, "set_aside": e.times_set_aside,
                        **({"last_error": e.last_error} if e.last_error else {})} for e in self.endpoints}


def check_urls(value: Any, name: str, source: str) -> list[str]:
    """One URL, a list of them, or ``@FILE`` entries standing for the URLs listed in FILE, one a line
    (blank lines and ``#`` comments skipped). ``None``: configs written before several endpoints."""
    values = [] if value is None else [value] if isinstance(value, str) else value
    if not isinstance(values, list):
        raise InputError("must be a URL or a list of URLs", file=source, field="base_url")
    urls: list[str] = []
    for entry in values:
        if not isinstance(entry, str) or not entry:
            raise InputError("must be a URL or a list of URLs", file=source, field="base_url")
        if not entry.startswith("@"):
            urls.append(_url(entry, source))
            continue
        try:
            lines = Path(entry[1:]).read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError) as exc:
            raise InputError(f"cannot read the list of URLs ({exc})", file=entry[1:], field="base_url") from None
        listed = [_url(line.strip(), entry[1:]) for line in lines if line.strip() and not line.lstrip().startswith("#")]
        if not listed:  # else reported as no --base-url at all
            raise InputError("lists no URL (only blank lines and # comments)", file=entry[1:], field="base_url")
        urls += listed
    return distinct(urls)


def distinct(urls: list[str]) -> list[str]:
    """Each endpoint once, without its trailing slash: the same replica given twice would count each of its
    requests under one name and report half of them (``timings.endpoints``)."""
    return list(dict.fromkeys(url.rstrip("/") for url in urls))


def _url(text: str, source: str) -> str:
    """An http(s) URL with a host and, if any, a numeric port."""
    try:
        parts = urllib.parse.urlsplit(text)
        parts.port  # noqa: B018 (raises ValueError for a port that is not a number)
    except ValueError:
        parts = None
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
        raise InputError(f"{text!r} is not an http(s) URL such as http://localhost:8000/v1", file=source,
                         field="base_url")
    return text
