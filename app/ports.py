"""Ports: checks done before anything starts, so "address in use" is one clear line, not a vLLM log, and
the free port every local run (demo, tests, benchmarks) picks for its servers."""

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


def free_port(host: str = "127.0.0.1") -> int:
    """A port on `host` that was free a moment ago (the kernel picks it; another process may take it first)."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])
