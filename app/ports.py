"""Port checks done before anything starts, so "address in use" is one clear line, not a vLLM log."""

from __future__ import annotations

import socket

from app.errors import ConfigError, PortInUseError


def ensure_port_free(host: str, port: int) -> None:
    """Raise PortInUseError if nothing could bind `host:port` right now.

    Binds with SO_REUSEADDR, as uvicorn and vLLM do, so a port merely in TIME_WAIT after a previous
    run counts as free. There is a window between this check and the real bind; it only exists to
    turn the common mistake (a server already running) into a readable error.
    """
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise ConfigError(f"cannot resolve host {host!r}: {exc.strerror}") from None
    family, socktype, proto, _, address = infos[0]
    with socket.socket(family, socktype, proto) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(address)
        except OSError as exc:
            raise PortInUseError(f"port {port} on {host} is not available: {exc.strerror}") from None
