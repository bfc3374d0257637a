"""Admission limits as plain ASGI middleware: header and body size, and how many generations run at once.

* Headers larger than ``MAZE_MAX_HEADER_BYTES`` in total are refused with 431 (the HTTP server itself
  sets no bound on them).
* Body size is checked before FastAPI reads the body, so a client cannot make the gateway buffer
  gigabytes; both a declared ``Content-Length`` and the bytes actually received count.
* Generation requests (the routes that reach vLLM) hold one of ``MAZE_MAX_CONCURRENT_REQUESTS`` slots
  from the first byte of the request to the last byte of the response, whole streams included. Up to
  ``MAZE_MAX_QUEUED_REQUESTS`` more wait, in arrival order, at most ``MAZE_QUEUE_WAIT_SECONDS`` for a
  slot; beyond that a request is refused at once with 429 and ``Retry-After``, which the openai SDK
  honours, instead of piling up until every client times out.
"""

from __future__ import annotations

import asyncio
import json
from collections import deque

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .errors import HeadersTooLargeError, MazeError, OverloadedError, PayloadTooLargeError, error_body_for
from .route_table import GENERATION_PATHS


async def send_error(scope: Scope, send: Send, error: MazeError) -> None:
    """Answer with ``error`` before the app has run (OpenAI-shaped, ``success: false`` on Maze routes)."""
    payload = json.dumps(error_body_for(scope["path"], error.body())).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())]
    headers += [(name.lower().encode(), value.encode()) for name, value in error.headers.items()]
    await send({"type": "http.response.start", "status": error.status_code, "headers": headers})
    await send({"type": "http.response.body", "body": payload})


class HeaderSizeLimitMiddleware:
    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            size = sum(len(name) + len(value) for name, value in scope.get("headers", []))
            if size > self.max_bytes:
                error = HeadersTooLargeError(
                    f"request headers total {size} bytes; the limit is {self.max_bytes} (MAZE_MAX_HEADER_BYTES): "
                    "send fewer or shorter headers"
                )
                await send_error(scope, send, error)
                return
        await self.app(scope, receive, send)


class BodySizeLimitMiddleware:
    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    def _error(self) -> PayloadTooLargeError:
        return PayloadTooLargeError(f"request body is larger than {self.max_bytes} bytes (MAZE_MAX_BODY_BYTES)")

    async def _reject(self, scope: Scope, send: Send) -> None:
        await send_error(scope, send, self._error())

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope.get("headers", []):
            if name == b"content-length" and value.isdigit() and int(value) > self.max_bytes:
                await self._reject(scope, send)
                return

        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise self._error()
            return message

        await self.app(scope, limited_receive, send)


class AdmissionGate:
    """``limit`` holders at once and at most ``max_waiting`` waiters, served first come, first served.

    A released slot is handed straight to the oldest waiter, so a newcomer cannot overtake the queue.
    Waiters are futures of whichever event loop is running, so the gate is not tied to one loop.
    """

    def __init__(self, limit: int, max_waiting: int) -> None:
        self.limit = limit
        self.max_waiting = max_waiting
        self.active = 0
        self._waiters: deque[asyncio.Future[None]] = deque()

    @property
    def waiting(self) -> int:
        return len(self._waiters)

    async def acquire(self, timeout: float) -> bool:
        """Take a slot, waiting up to ``timeout`` seconds; False when the queue is full or time ran out."""
        if self.active < self.limit and not self._waiters:
            self.active += 1
            return True
        if len(self._waiters) >= self.max_waiting or timeout <= 0:
            return False
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            async with asyncio.timeout(timeout):
                await waiter
        except TimeoutError:
            self._abandon(waiter)
            return False
        except asyncio.CancelledError:  # the client went away while queued
            self._abandon(waiter)
            raise
        return True

    def _abandon(self, waiter: asyncio.Future[None]) -> None:
        if waiter.done() and not waiter.cancelled():
            self.release()  # the slot arrived just as the waiter gave up: pass it on
        elif waiter in self._waiters:
            self._waiters.remove(waiter)

    def release(self) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)  # the slot moves to the waiter; ``active`` is unchanged
                return
        self.active -= 1


class ConcurrencyLimitMiddleware:
    """Bounded concurrency and queueing for generation routes; everything else passes untouched."""

    def __init__(
        self, app: ASGIApp, *, max_concurrent: int, max_queued: int, queue_wait_seconds: float, retry_after_seconds: int
    ) -> None:
        self.app = app
        self.gate = AdmissionGate(max_concurrent, max_queued)
        self.queue_wait_seconds = queue_wait_seconds
        self.retry_after_seconds = retry_after_seconds

    def _overloaded(self, queue_was_full: bool) -> OverloadedError:
        gate = self.gate
        if queue_was_full:
            why = (
                f"{gate.active} requests are running and {gate.waiting} waiting, the most allowed "
                "(MAZE_MAX_CONCURRENT_REQUESTS, MAZE_MAX_QUEUED_REQUESTS)"
            )
        else:
            why = (
                f"no slot of {gate.limit} freed within {self.queue_wait_seconds:g} s (MAZE_MAX_CONCURRENT_REQUESTS, "
                "MAZE_QUEUE_WAIT_SECONDS)"
            )
        return OverloadedError(
            f"the server is at capacity: {why}; retry after {self.retry_after_seconds} s",
            headers={"Retry-After": str(self.retry_after_seconds)},
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] not in GENERATION_PATHS or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        queue_was_full = self.gate.waiting >= self.gate.max_waiting
        if not await self.gate.acquire(self.queue_wait_seconds):
            await send_error(scope, send, self._overloaded(queue_was_full))
            return
        try:
            await self.app(scope, receive, send)
        finally:
            self.gate.release()
