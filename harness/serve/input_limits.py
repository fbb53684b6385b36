"""Requests' bodies checked before anything runs: size, encoding, JSON, shape.

In: a Starlette request. Out: its JSON object, or ``BadRequest`` with the 4xx code and one line saying what is
wrong; never a 500 and never a connection left hanging (a body over the limit is refused as soon as its
``Content-Length`` says so, or as soon as that many bytes have arrived).
"""

from __future__ import annotations

import json
from typing import Any

from starlette.requests import Request

from harness.serve.settings import InputLimits


class BadRequest(Exception):
    """A request the service refuses: ``code`` (4xx) and a one-line ``reason``."""

    def __init__(self, reason: str, code: int = 400):
        super().__init__(reason)
        self.reason = reason
        self.code = code


async def json_body(request: Request, limits: InputLimits) -> dict[str, Any]:
    declared = request.headers.get("content-length")
    if declared is not None and (not declared.isdigit() or int(declared) > limits.body_bytes):
        raise BadRequest(f"request body over {limits.body_bytes} bytes", 413)
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limits.body_bytes:
            raise BadRequest(f"request body over {limits.body_bytes} bytes", 413)
        chunks.append(chunk)
    try:
        text = b"".join(chunks).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BadRequest(f"request body is not UTF-8 (byte {exc.start})") from None
    try:
        body = json.loads(text)
    except json.JSONDecodeError as exc:
        raise BadRequest(f"malformed JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from None
    except RecursionError:
        raise BadRequest("malformed JSON: nested too deeply") from None
    if not isinstance(body, dict):
        raise BadRequest("the request body must be a JSON object")
    return body


def check_program(text: str, field: str, limits: InputLimits) -> None:
    if len(text.encode("utf-8", "surrogatepass")) > limits.program_bytes:
        raise BadRequest(f"field {field!r}: program over {limits.program_bytes} bytes", 413)
