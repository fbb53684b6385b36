"""From a request's jobs to their executions, on the asyncio loop: admission, waiting, deadline.

In: the scheduler, the client's name, the jobs and the request's deadline. Out: one ``Execution`` per job, in
order; ``QueueFull`` when they do not fit and the caller retries (429), ``DeadlinePassed`` when the deadline
came first (504). A request whose client hung up withdraws its jobs that have not started.
"""

from __future__ import annotations

import asyncio
import time

from harness.serve.input_limits import BadRequest
from harness.serve.jobs.scheduler import Item, QueueFull, Scheduler
from sandbox.pool import Execution, Job

ADMISSION_POLL_SECONDS = 0.05


class DeadlinePassed(Exception):
    """The request's deadline passed before all of its jobs ran."""


async def run_jobs(scheduler: Scheduler, client: str, jobs: list[Job], deadline: float,
                   wait_for_room: bool, bounded: bool = True) -> list[Execution]:
    """``wait_for_room``: a client that does not handle 429 waits for room until its deadline instead.
    ``bounded=False``: the service's own jobs, admitted whatever the queue holds."""
    if bounded and len(jobs) > scheduler.capacity:  # could never fit: not a matter of retrying later
        raise BadRequest(f"{len(jobs)} programs in one request, more than the queue holds ({scheduler.capacity}, "
                         "serve --queue)", 413)
    loop = asyncio.get_running_loop()
    futures: list[asyncio.Future] = [loop.create_future() for _ in jobs]
    items = [Item(job, deadline, _deliverer(loop, future)) for job, future in zip(jobs, futures)]
    while True:
        try:
            scheduler.submit(client, items, bounded)
            break
        except QueueFull:
            if not wait_for_room or time.monotonic() + ADMISSION_POLL_SECONDS >= deadline:
                raise
            await asyncio.sleep(ADMISSION_POLL_SECONDS)
    try:
        executions = await asyncio.gather(*futures)
    except asyncio.CancelledError:  # the client hung up: what has not started never runs
        for item in items:
            item.cancelled = True
        raise
    if any(execution is None for execution in executions):
        raise DeadlinePassed("the request's deadline passed while its programs waited for a worker")
    return list(executions)


def _deliverer(loop: asyncio.AbstractEventLoop, future: asyncio.Future):
    """Called in a worker thread: hands the execution to the loop (a request already gone is left alone)."""

    def settle(execution: Execution | None) -> None:
        if not future.done():
            future.set_result(execution)

    def deliver(execution: Execution | None) -> None:
        try:
            loop.call_soon_threadsafe(settle, execution)
        except RuntimeError:  # the loop has closed (shutdown)
            pass

    return deliver
