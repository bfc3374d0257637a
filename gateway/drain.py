"""Ending in-flight streams cleanly when the server has to stop.

On SIGTERM (a Modal container being replaced, a deploy, Ctrl-C) the server stops accepting
connections and gives running requests a grace period. A stream that is still going when the grace
period runs out would otherwise be cut mid-chunk: the client sees a broken connection, or worse, a
truncation it cannot tell from the end. :class:`Drain` closes those upstream streams a little
before the deadline instead, and the relay (``gateway/proxy.py``) then ends each client's stream
with an SSE error event saying the server is shutting down and the request should be retried.

The drain lives on ``app.state.drain`` from the moment the app is built, so whoever owns the
server's shutdown (``app.supervisor``) can start it.
"""

from __future__ import annotations

import anyio
import httpx


class Drain:
    """The upstream streams being relayed, and whether the server has stopped waiting for them."""

    def __init__(self) -> None:
        self.expired = False
        self._streams: set[httpx.Response] = set()

    def track(self, response: httpx.Response) -> None:
        self._streams.add(response)

    def untrack(self, response: httpx.Response) -> None:
        self._streams.discard(response)

    @property
    def active(self) -> int:
        return len(self._streams)

    async def expire_after(self, seconds: float) -> None:
        """Give streams ``seconds`` to finish, then close the rest (their relays send an error event)."""
        with anyio.move_on_after(seconds):
            while self._streams:
                await anyio.sleep(0.05)
        self.expired = True
        for response in list(self._streams):
            await response.aclose()  # the relay reading it gets httpx.ReadError
