"""Keep a slow non-streamed answer alive past a front proxy's request limit.

Modal answers any web request that has not *started* its response within 150 s with a 303
redirect to a result URL (docs: guide/webhook-timeouts). A non-streamed generation of a few
thousand tokens can take longer than that, and many clients do not follow a 303 on a POST the way
Modal intends. Streaming avoids the limit because the response starts at the first token; this
middleware gives non-streamed requests the same property without changing their body:

* if the application has not started its response ``after`` seconds into a non-streamed POST,
  the middleware starts it itself: status 200, ``Content-Type: application/json`` and
  ``X-Maze-Deferred: 1``, then sends one space every ``interval`` seconds;
* when the application's answer arrives, its body follows the spaces. JSON allows leading
  whitespace, so ``json.loads``, httpx's ``response.json()`` and the openai SDK read it as usual.

The price: a status decided after the deferral cannot be sent any more. Such an answer still
carries its OpenAI-style ``{"error": ...}`` body (and ``success: false`` on Maze routes), and the
``X-Maze-Deferred`` header tells a client to look at the body rather than the status. Requests
that finish in time, streamed requests and every other route are untouched.
"""

from __future__ import annotations

import asyncio
import json

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .route_table import GENERATION_PATHS

DEFERRED_HEADER = "x-maze-deferred"


def _asks_for_stream(body: bytes) -> bool:
    """True when the JSON body sets ``stream: true`` (those start their response at once)."""
    if b'"stream"' not in body:
        return False
    try:
        return json.loads(body).get("stream") is True
    except (ValueError, AttributeError):
        return False  # the route answers a bad body at once with a 4xx


class KeepAliveMiddleware:
    """Starts a 200 with whitespace heartbeats for non-streamed generations slower than ``after`` s."""

    def __init__(self, app: ASGIApp, after_seconds: float, interval_seconds: float) -> None:
        self.app = app
        self.after = after_seconds
        self.interval = interval_seconds

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            self.after <= 0
            or scope["type"] != "http"
            or scope["method"] != "POST"
            or scope["path"] not in GENERATION_PATHS
        ):
            await self.app(scope, receive, send)
            return
        await _KeptAlive(self.after, self.interval, receive, send).run(self.app, scope)


class _KeptAlive:
    """One request's state: is the heartbeat still running, and did it start the response itself?

    The heartbeat is a bare asyncio task and the lock an asyncio lock: cancelling an anyio scope
    formats the task's repr, and once the response has started every chunk of a stream skips the
    lock entirely, so a kept-alive route costs a streamed response almost nothing per chunk.
    """

    def __init__(self, after: float, interval: float, receive: Receive, send: Send) -> None:
        self.after = after
        self.interval = interval
        self.receive = receive
        self.send = send
        self.body = bytearray()
        self.body_read = asyncio.Event()
        self.passthrough = False  # the heartbeat is over: messages go straight to the client
        self.deferred = False  # the heartbeat started the response itself
        self.lock = asyncio.Lock()  # held by whoever is writing while both may
        self.heartbeat_task: asyncio.Task[None] | None = None

    async def app_receive(self) -> Message:
        message = await self.receive()
        if message["type"] == "http.request":
            self.body += message.get("body", b"")
            if not message.get("more_body", False):
                self.body_read.set()
        return message

    async def app_send(self, message: Message) -> None:
        if self.passthrough:
            await self.send(message)
            return
        async with self.lock:
            if message["type"] == "http.response.start":
                self.passthrough = True
                if self.heartbeat_task is not None:
                    self.heartbeat_task.cancel()  # it cannot be mid-write: we hold the lock
                if self.deferred:
                    return  # the client already has our 200; the status is in the body now
            await self.send(message)

    async def heartbeat(self) -> None:
        await self.body_read.wait()
        if _asks_for_stream(bytes(self.body)):
            self.passthrough = True  # nothing was written by the heartbeat, and nothing will be
            return
        self.body = bytearray()  # not needed any more
        await asyncio.sleep(self.after)
        async with self.lock:
            if self.passthrough:
                return
            self.deferred = True
            await self.send(
                {
                    "type": "http.response.start",
                    "status": 200,
                    "headers": [(b"content-type", b"application/json"), (DEFERRED_HEADER.encode(), b"1")],
                }
            )
        while True:
            async with self.lock:
                if self.passthrough:
                    return
                await self.send({"type": "http.response.body", "body": b" ", "more_body": True})
            await asyncio.sleep(self.interval)

    async def run(self, app: ASGIApp, scope: Scope) -> None:
        self.heartbeat_task = asyncio.get_running_loop().create_task(self.heartbeat())
        self.heartbeat_task.add_done_callback(_retrieve)
        try:
            await app(scope, self.app_receive, self.app_send)
        finally:
            self.passthrough = True
            self.heartbeat_task.cancel()


def _retrieve(task: asyncio.Task[None]) -> None:
    """A heartbeat that failed to write found the client gone; the request itself learns that from
    its own send or from the disconnect watcher, so the error only needs collecting."""
    if not task.cancelled():
        task.exception()
