"""Ending in-flight streams cleanly when the server has to stop.

On SIGTERM (a Modal container being replaced, a deploy, Ctrl-C) the server stops accepting
connections and gives running requests a grace period. A request still going when the grace period
runs out would otherwise be cut: a stream mid-chunk (a broken connection, or worse, a truncation the
client cannot tell from the end), a non-streamed request with no answer at all. :class:`Drain` ends
them a little before the deadline instead, each with an answer that says the server is shutting down
and the request should be retried: the relay (``gateway/proxy.py``) ends a stream with an SSE error
event, and a non-streamed request waiting for the upstream gets 503 with ``Retry-After``.

The drain lives on ``app.state.drain`` from the moment the app is built, so whoever owns the
server's shutdown (``app.supervisor``) can start it.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import anyio
import httpx

from .errors import UpstreamUnavailableError

SHUTTING_DOWN = "the server is shutting down; retry the request"


class Drain:
    """The upstream requests in flight, and whether the server has stopped waiting for them."""

    def __init__(self, retry_after_seconds: int = 10) -> None:
        self.expired = False
        self.retry_after_seconds = retry_after_seconds
        self._streams: set[httpx.Response] = set()
        self._waiting: set[anyio.CancelScope] = set()

    def track(self, response: httpx.Response) -> None:
        self._streams.add(response)

    def untrack(self, response: httpx.Response) -> None:
        self._streams.discard(response)

    @contextmanager
    def cutoff(self) -> Iterator[None]:
        """Around a non-streamed upstream call: if the grace period runs out first, the call is
        cancelled (closing its upstream connection, so vLLM aborts it) and 503 is raised instead."""
        if self.expired:
            raise self.shutting_down()
        scope = anyio.CancelScope()
        self._waiting.add(scope)
        try:
            with scope:
                yield
        finally:
            self._waiting.discard(scope)
        if scope.cancelled_caught:
            raise self.shutting_down()

    def shutting_down(self) -> UpstreamUnavailableError:
        return UpstreamUnavailableError(SHUTTING_DOWN, headers={"Retry-After": str(self.retry_after_seconds)})

    @property
    def active(self) -> int:
        return len(self._streams) + len(self._waiting)

    async def expire_after(self, seconds: float) -> None:
        """Give requests ``seconds`` to finish, then end the rest with a "shutting down" answer."""
        with anyio.move_on_after(seconds):
            while self.active:
                await anyio.sleep(0.05)
        self.expired = True
        for scope in list(self._waiting):
            scope.cancel()
        for response in list(self._streams):
            await response.aclose()  # the relay reading it gets httpx.ReadError
