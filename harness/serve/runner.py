"""Starting the service: which addresses it may bind, then uvicorn until SIGTERM or Ctrl-C.

A loopback address is the default and needs nothing more. Any other address needs a token the clients send
(``--token``) or the operator's word that the network in front of it is trusted (``--trusted-network``):
SandboxFusion's client sends no token. On SIGTERM uvicorn stops accepting, the requests in flight are
answered, then the queue is drained and the sandbox ends.
"""

from __future__ import annotations

import importlib.util
import ipaddress
import logging
import socket
from typing import TYPE_CHECKING

from harness.errors import InputError

if TYPE_CHECKING:
    from harness.serve.settings import Settings

log = logging.getLogger(__name__)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_binding(host: str, token: str | None, trusted_network: bool) -> None:
    if not is_loopback(host) and token is None and not trusted_network:
        raise InputError(f"binding {host} opens the sandbox to the network: pass --token (clients send "
                         "'Authorization: Bearer <token>') or --trusted-network", field="--host")


def check_port_free(host: str, port: int) -> None:
    """A port in use is an input error (one line), not uvicorn's traceback after the sandbox has started."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            raise InputError(f"cannot listen on {host}:{port} ({exc.strerror})", field="--port") from None


def check_installed() -> None:
    missing = [name for name in ("uvicorn", "starlette") if importlib.util.find_spec(name) is None]
    if missing:
        raise InputError(f"serve needs {' and '.join(missing)}: pip install 'program-synthesis-harness[serve]'",
                         field="serve")


def serve(host: str, port: int, settings: "Settings", trusted_network: bool = False) -> int:
    check_installed()
    check_binding(host, settings.token, trusted_network)
    check_port_free(host, port)
    import uvicorn

    from harness.serve.app import Service, build_app

    service = Service(settings)
    try:
        config = uvicorn.Config(build_app(service), host=host, port=port, log_level="warning", access_log=False,
                                timeout_graceful_shutdown=int(settings.deadline_seconds) + 5)
        server = uvicorn.Server(config)
        print(f"serving on http://{host}:{port} with {settings.workers} worker(s), sandbox layers: "
              f"{', '.join(n for n, on in service.pool.isolation.layers.items() if on)}", flush=True)
        try:
            server.run()
        except KeyboardInterrupt:  # uvicorn passes the signal it stopped on (SIGTERM, Ctrl-C) on once it has stopped
            pass
    finally:
        service.close()  # the queue drained, the sandbox ended
    print("stopped", flush=True)
    return 0
