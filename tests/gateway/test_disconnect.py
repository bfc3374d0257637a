"""gateway.disconnect: a client that hangs up cancels the handler, so the upstream request is dropped."""

from __future__ import annotations

import anyio
import pytest
from starlette.types import Message, Receive, Scope, Send

from gateway.disconnect import CancelOnDisconnectMiddleware

SCOPE: Scope = {"type": "http", "method": "POST", "path": "/v1/chat/completions", "headers": []}
pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


class Client:
    """An ASGI client side: sends a body, then hangs up after ``leave_after`` seconds (or never)."""

    def __init__(self, leave_after: float | None) -> None:
        self.leave_after = leave_after
        self.sent: list[Message] = []
        self.body_given = False

    async def receive(self) -> Message:
        if not self.body_given:
            self.body_given = True
            return {"type": "http.request", "body": b"{}", "more_body": False}
        if self.leave_after is None:
            await anyio.sleep_forever()
        await anyio.sleep(self.leave_after)
        return {"type": "http.disconnect"}

    async def send(self, message: Message) -> None:
        self.sent.append(message)


async def test_disconnect_cancels_a_handler_waiting_on_the_upstream() -> None:
    outcome: list[str] = []

    async def slow_handler(scope: Scope, receive: Receive, send: Send) -> None:
        await receive()
        try:
            await anyio.sleep(30)  # a non-streamed upstream call that would take the whole generation
            outcome.append("finished")
        except anyio.get_cancelled_exc_class():
            outcome.append("cancelled")
            raise

    client = Client(leave_after=0.1)
    with anyio.fail_after(5):
        await CancelOnDisconnectMiddleware(slow_handler)(SCOPE, client.receive, client.send)
    assert outcome == ["cancelled"]


async def test_handler_that_answers_is_untouched_and_sees_the_disconnect_through_receive() -> None:
    seen: list[str] = []

    async def handler(scope: Scope, receive: Receive, send: Send) -> None:
        assert (await receive())["type"] == "http.request"
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok", "more_body": True})
        seen.append((await receive())["type"])  # how StreamingResponse learns the client left
        await send({"type": "http.response.body", "body": b"", "more_body": False})

    client = Client(leave_after=0.05)
    with anyio.fail_after(5):
        await CancelOnDisconnectMiddleware(handler)(SCOPE, client.receive, client.send)
    assert seen == ["http.disconnect"]


async def test_a_disconnect_after_the_response_cancels_nothing() -> None:
    finished: list[bool] = []

    async def handler(scope: Scope, receive: Receive, send: Send) -> None:
        await receive()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"done", "more_body": False})
        await anyio.sleep(0.3)  # after-response work (e.g. background tasks) outlives the cycle
        finished.append(True)

    client = Client(leave_after=0.0)
    with anyio.fail_after(5):
        await CancelOnDisconnectMiddleware(handler)(SCOPE, client.receive, client.send)
    assert finished == [True]


async def test_errors_are_raised_as_they_are() -> None:
    async def broken(scope: Scope, receive: Receive, send: Send) -> None:
        await receive()
        raise ValueError("bug")

    with pytest.raises(ValueError, match="bug"):
        await CancelOnDisconnectMiddleware(broken)(SCOPE, Client(None).receive, Client(None).send)
