"""The HTTP routes of ``run-benchmark serve`` (a Starlette application) and the state they share.

Routes: ``POST /run_code`` (SandboxFusion's, ``harness.serve.run_code``), ``POST /verify`` (``evaluate``'s
verdicts, ``harness.serve.verify``), ``GET /health`` and ``GET /metrics`` (Prometheus text). Every refusal is
a 4xx (429 and 504 for load) with ``{"error": one line}``; a request's client is its ``X-Client-Id`` header,
else its remote address, and clients take turns for the workers (``harness.serve.jobs.scheduler``).
"""

from __future__ import annotations

import hmac
import time
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from harness.cache_paths import cache_root
from harness.execution.time_limits import floor_limits
from harness.execution.verdict_cache import VerdictCache
from harness.serve import run_code, verify
from harness.serve.jobs.dispatch import DeadlinePassed, run_jobs
from harness.serve.input_limits import BadRequest, check_program, json_body
from harness.serve.metrics import Metrics
from harness.serve.jobs.scheduler import QueueFull, Scheduler
from harness.serve.settings import Settings
from harness.serve.suites import Suites
from sandbox.pool import Execution, Job, SandboxPool


class Service:
    """The pool, its scheduler and what the routes share; ``close`` drains the queue and ends the pool."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self.pool = SandboxPool(workers=settings.workers, mode=settings.sandbox, python=settings.sandbox_python)
        try:  # a cache folder that cannot be made (HARNESS_CACHE) is an input error: end the pool's servers first
            self.cache = (VerdictCache(cache_root() / "verdicts.sqlite", self.pool.python)
                          if settings.verdict_cache else None)
        except BaseException:
            self.pool.close()
            raise
        self.metrics = Metrics()
        self.scheduler = Scheduler(self.pool, settings.queue, self.metrics)
        self.context = {"python": self.pool.python, "layers": self.pool.isolation.layers}  # the Executor's
        self.suites = Suites(self.pool.python, floor_limits(settings.timeout, settings.memory_mb), self._run_blocking)
        self.started = time.time()

    def _run_blocking(self, jobs: list[Job]) -> list[Execution]:
        """Jobs from a helper thread (measuring a suite's references), waiting as long as they take."""
        import asyncio

        return asyncio.run(run_jobs(self.scheduler, "harness", jobs, time.monotonic() + 3600, True, bounded=False))

    def close(self) -> None:
        self.scheduler.close()
        self.pool.close()
        if self.cache:
            self.cache.close()


def build_app(service: Service) -> Starlette:
    settings, metrics = service.settings, service.metrics

    def deadline(request: Request) -> float:
        asked = request.headers.get("x-deadline-seconds")
        try:
            seconds = min(float(asked), settings.deadline_seconds) if asked else settings.deadline_seconds
        except ValueError:
            raise BadRequest("header X-Deadline-Seconds must be a number") from None
        return time.monotonic() + seconds

    async def run_code_route(request: Request) -> dict[str, Any]:
        body = await json_body(request, settings.input)
        job = run_code.job_from(body, settings.max_run_timeout, settings.memory_mb)
        check_program(body["code"] + (body.get("stdin") or ""), "code", settings.input)
        # SandboxFusion's client gives up on a 429 after a few retries: it waits for room until its deadline.
        [execution] = await run_jobs(service.scheduler, client_of(request), [job], deadline(request), True)
        return run_code.response_from(execution)

    async def verify_route(request: Request) -> dict[str, Any]:
        body = await json_body(request, settings.input)
        ends = deadline(request)

        async def run(jobs: list[Job]) -> list[Execution]:
            return await run_jobs(service.scheduler, client_of(request), jobs, ends, False)

        return await verify.verify(body, service.suites, service.cache, service.context, settings.input, run)

    async def health(_: Request) -> Response:
        return JSONResponse({"status": "ok", "workers": service.pool.workers, "queue_depth": service.scheduler.depth,
                             "isolation": service.pool.isolation.as_dict(),
                             "uptime_seconds": time.time() - service.started})

    async def metrics_route(_: Request) -> Response:
        text = metrics.exposition(service.scheduler.depth, service.pool.workers, service.pool.servers_replaced)
        return PlainTextResponse(text, media_type="text/plain; version=0.0.4")

    def guarded(route: str, handler: Callable[[Request], Awaitable[dict[str, Any]]]):
        async def endpoint(request: Request) -> Response:
            started = time.monotonic()
            response = await _answer(request, handler, settings.token, metrics)
            metrics.request_done(route, response.status_code, time.monotonic() - started)
            return response

        return endpoint

    return Starlette(routes=[Route("/run_code", guarded("/run_code", run_code_route), methods=["POST"]),
                             Route("/verify", guarded("/verify", verify_route), methods=["POST"]),
                             Route("/health", health, methods=["GET"]),
                             Route("/metrics", metrics_route, methods=["GET"])])


async def _answer(request: Request, handler: Callable[[Request], Awaitable[dict[str, Any]]], token: str | None,
                  metrics: Metrics) -> Response:
    """The handler's answer, or the refusal it ran into, as one JSON line."""
    try:
        if token is not None and not _authorized(request, token):
            raise BadRequest("missing or wrong token (send 'Authorization: Bearer <token>')", 401)
        return JSONResponse(await handler(request))
    except BadRequest as exc:
        metrics.refused("bad_request" if exc.code != 401 else "unauthorized")
        return JSONResponse({"error": exc.reason}, exc.code)
    except QueueFull as exc:
        metrics.refused("queue_full")
        return JSONResponse({"error": "the queue is full: retry after the given seconds"}, 429,
                            headers={"Retry-After": str(exc.retry_after)})
    except DeadlinePassed as exc:
        metrics.refused("deadline")
        return JSONResponse({"error": str(exc)}, 504)


def _authorized(request: Request, token: str) -> bool:
    sent = request.headers.get("authorization", "")
    return sent.startswith("Bearer ") and hmac.compare_digest(sent[7:].encode(), token.encode())


def client_of(request: Request) -> str:
    return request.headers.get("x-client-id") or (request.client.host if request.client else "unknown")
