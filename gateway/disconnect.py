"""Cancel a request's work when its client hangs up, streamed or not.

ASGI servers do not cancel an application when the client disconnects: they only report
``http.disconnect`` the next time the application calls ``receive()``. A streaming response
listens for that, but a non-streamed completion sits in ``await upstream.post(...)`` and never
asks, so vLLM would go on generating (up to ``max_tokens``) for nobody. This middleware listens on
the request's behalf once its body has been read, and cancels the handler when the client leaves:
the cancelled httpx request closes its upstream connection and vLLM aborts the generation.

It must be the only reader of ``receive()`` after the body: the handler (and Starlette's
``StreamingResponse``) get the disconnect from it through an event instead.
"""

from __future__ import annotations

import asyncio

import anyio
from starlette.types import ASGIApp, Message, Receive, Scope, Send


class CancelOnDisconnectMiddleware:
    """Runs each HTTP request in a cancel scope that a client disconnect cancels."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        body_read = anyio.Event()
        disconnected = anyio.Event()
        response_done = False

        async def app_receive() -> Message:
            if body_read.is_set():
                await disconnected.wait()
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.disconnect":
                disconnected.set()
            elif not message.get("more_body", False):
                body_read.set()
            return message

        async def app_send(message: Message) -> None:
            nonlocal response_done
            if message["type"] == "http.response.body" and not message.get("more_body", False):
                response_done = True
            await send(message)

        scope_of_request = anyio.CancelScope()

        async def watch() -> None:
            await body_read.wait()
            while (await receive())["type"] != "http.disconnect":
                pass
            disconnected.set()
            if not response_done:  # after the response, a "disconnect" is only the cycle ending
                scope_of_request.cancel()

        # A bare asyncio task, not an anyio task group: ending the watcher is then a cheap
        # ``Task.cancel()``, where cancelling an anyio scope formats the task's repr on every request.
        watcher = asyncio.get_running_loop().create_task(watch())
        try:
            with scope_of_request:
                await self.app(scope, app_receive, app_send)
        finally:
            watcher.cancel()
