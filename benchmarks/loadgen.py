"""A lean HTTP/1.1 load generator: keep-alive connections on uvloop, responses parsed by httptools.

A Python client such as httpx costs hundreds of microseconds per request, which would drown the
differences being measured (and, at concurrency 32, make the client the bottleneck). This one sends
precomputed request bytes and timestamps the first body byte and the end of each response, so a
request costs it a few tens of microseconds.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass, field

import httptools

from .common import without_delay


@dataclass
class Result:
    status: int
    #: Seconds from sending the request to the first body byte (time to first chunk for streams).
    first_byte_s: float
    #: Seconds from sending the request to the end of the response.
    total_s: float
    body: bytes


@dataclass
class _Pending:
    sent: int
    keep_body: bool
    future: asyncio.Future[Result]
    status: int = 0
    first: int = 0
    parts: list[bytes] = field(default_factory=list)


class Connection(asyncio.Protocol):
    """One keep-alive connection; one request in flight at a time."""

    def __init__(self) -> None:
        self.parser = httptools.HttpResponseParser(self)
        self.transport: asyncio.Transport | None = None
        self.pending: _Pending | None = None
        self.lost: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    @classmethod
    async def open(cls, host: str, port: int) -> Connection:
        loop = asyncio.get_running_loop()
        _, protocol = await loop.create_connection(cls, host, port)
        return protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = without_delay(transport)

    def data_received(self, data: bytes) -> None:
        self.parser.feed_data(data)

    def connection_lost(self, exc: Exception | None) -> None:
        if self.pending is not None and not self.pending.future.done():
            self.pending.future.set_exception(ConnectionError(f"connection lost: {exc}"))
        if not self.lost.done():
            self.lost.set_result(None)

    # httptools callbacks
    def on_headers_complete(self) -> None:
        assert self.pending is not None
        self.pending.status = self.parser.get_status_code()

    def on_body(self, body: bytes) -> None:
        pending = self.pending
        assert pending is not None
        if not pending.first:
            pending.first = time.perf_counter_ns()
        if pending.keep_body:
            pending.parts.append(body)

    def on_message_complete(self) -> None:
        pending = self.pending
        assert pending is not None
        end = time.perf_counter_ns()
        first = pending.first or end
        self.pending = None
        pending.future.set_result(
            Result(pending.status, (first - pending.sent) / 1e9, (end - pending.sent) / 1e9, b"".join(pending.parts))
        )

    async def send(self, request: bytes, keep_body: bool = False) -> Result:
        assert self.transport is not None and self.pending is None
        future: asyncio.Future[Result] = asyncio.get_running_loop().create_future()
        self.pending = _Pending(time.perf_counter_ns(), keep_body, future)
        self.transport.write(request)
        return await future

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


def post_json(host: str, port: int, path: str, body: dict[str, object], headers: dict[str, str] | None = None) -> bytes:
    """The bytes of a keep-alive ``POST`` with a JSON body."""
    payload = json.dumps(body).encode()
    lines = [
        f"POST {path} HTTP/1.1",
        f"Host: {host}:{port}",
        "Content-Type: application/json",
        "Accept: */*",
        f"Content-Length: {len(payload)}",
        *(f"{k}: {v}" for k, v in (headers or {}).items()),
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + payload


async def sequential(
    host: str, port: int, request: bytes, count: int, keep_body: bool = False, max_seconds: float = float("inf")
) -> list[Result]:
    """``count`` requests one after another on one connection (concurrency 1), fewer if ``max_seconds``
    run out first (at least one is always sent)."""
    conn = await Connection.open(host, port)
    stop_at = time.perf_counter() + max_seconds
    results: list[Result] = []
    try:
        while len(results) < count and (not results or time.perf_counter() < stop_at):
            results.append(await conn.send(request, keep_body))
        return results
    finally:
        conn.close()


async def throughput(host: str, port: int, request: bytes, concurrency: int, seconds: float) -> tuple[int, int, float]:
    """Closed loop: ``concurrency`` connections each sending back to back for ``seconds``.

    Returns (completed requests, non-200 answers, elapsed seconds).
    """
    conns = [await Connection.open(host, port) for _ in range(concurrency)]
    done = 0
    errors = 0
    started = time.perf_counter()
    stop_at = started + seconds

    async def worker(conn: Connection) -> None:
        nonlocal done, errors
        while time.perf_counter() < stop_at:
            result = await conn.send(request)
            done += 1
            errors += result.status != 200

    try:
        await asyncio.gather(*(worker(c) for c in conns))
    finally:
        for conn in conns:
            conn.close()
    return done, errors, time.perf_counter() - started
