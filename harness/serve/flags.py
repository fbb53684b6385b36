"""The ``serve`` command's flags (argparse), and the service's settings read from them. Imports nothing heavy:
the command line loads it for ``--help``."""

from __future__ import annotations

import argparse
import os
from typing import TYPE_CHECKING

from harness import validate_input as validate

if TYPE_CHECKING:
    from harness.serve.settings import Settings


def add_serve_command(commands: argparse._SubParsersAction) -> None:
    serve = commands.add_parser(
        "serve", help="the sandbox as a local HTTP service: SandboxFusion's /run_code, /verify, /health, /metrics",
        description="Serve the sandbox over HTTP. Binds 127.0.0.1 unless told otherwise; any other address needs "
                    "--token or --trusted-network. SIGTERM answers the requests in flight, then stops.")
    add = serve.add_argument
    add("--host", default="127.0.0.1")
    add("--port", type=validate.integer_flag(minimum=1, maximum=65535), default=8080)
    add("--workers", type=validate.integer_flag(minimum=1, maximum=1024), default=2)
    add("--token", default=os.environ.get("HARNESS_SERVE_TOKEN") or None,
        help="clients must send 'Authorization: Bearer TOKEN' (needed to bind a non-loopback address); default: "
             "$HARNESS_SERVE_TOKEN, which, unlike the command line, other users' ps does not show")
    add("--trusted-network", action="store_true",
        help="bind a non-loopback address without a token (the network in front of it admits only trusted clients)")
    add("--sandbox", type=validate.flag(validate.sandbox_mode), default="full",
        help="full (default): refuse to start unless every isolation layer is available; auto: run with what there "
             "is (recorded at /health); none: no isolation")
    add("--sandbox-python")
    add("--queue", type=validate.integer_flag(minimum=1, maximum=1 << 20), default=1024,
        help="programs waiting for a worker, all clients together; beyond it: 429 with Retry-After (default 1024)")
    add("--deadline", type=validate.number_flag(above=0, maximum=86400), default=120.0,
        help="seconds a request may take from arrival to answer (default 120; a client's X-Deadline-Seconds "
             "header may ask for less)")
    add("--timeout", type=validate.number_flag(above=0, maximum=86400), default=10.0,
        help="/verify: the time limit floor, as evaluate's --timeout")
    add("--memory-mb", type=validate.integer_flag(minimum=64, maximum=1 << 30), default=4096)
    add("--max-samples", type=validate.integer_flag(minimum=1, maximum=1 << 20), default=1024,
        help="programs per request (default 1024)")
    add("--no-verdict-cache", dest="verdict_cache", action="store_false")


def settings_from(args: argparse.Namespace) -> "Settings":
    from harness.serve.settings import InputLimits, Settings

    return Settings(workers=args.workers, sandbox=args.sandbox, sandbox_python=args.sandbox_python, token=args.token,
                    queue=args.queue, deadline_seconds=args.deadline, timeout=args.timeout, memory_mb=args.memory_mb,
                    verdict_cache=args.verdict_cache, input=InputLimits(samples=args.max_samples))
