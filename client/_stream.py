"""Text deltas out of the SDK's chunk streams; the finish_reason is kept for after the loop."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

from ._request import chunk_delta


class TextStream:
    """Iterates over the non-empty text deltas of a streamed chat completion.

    After the loop, ``finish_reason`` says why it ended (``"stop"``, ``"length"``) and ``usage`` holds the
    server's token counts (``usage.completion_tokens``) when it sent them. ``close()`` (or ``with``) drops
    the connection early, which makes the gateway abort the generation.
    """

    def __init__(self, stream: Any) -> None:
        self._stream = stream
        self.finish_reason: str | None = None
        self.usage: Any = None

    def __iter__(self) -> Iterator[str]:
        for chunk in self._stream:
            delta, finish = chunk_delta(chunk)
            self.finish_reason = finish or self.finish_reason
            self.usage = getattr(chunk, "usage", None) or self.usage
            if delta:
                yield delta

    def close(self) -> None:
        self._stream.close()

    def __enter__(self) -> TextStream:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class AsyncTextStream:
    """The async twin of ``TextStream``: ``async for delta in stream``, then ``finish_reason`` and ``usage``."""

    def __init__(self, stream: Any) -> None:
        self._stream = stream
        self.finish_reason: str | None = None
        self.usage: Any = None

    async def __aiter__(self) -> AsyncIterator[str]:
        async for chunk in self._stream:
            delta, finish = chunk_delta(chunk)
            self.finish_reason = finish or self.finish_reason
            self.usage = getattr(chunk, "usage", None) or self.usage
            if delta:
                yield delta

    async def aclose(self) -> None:
        await self._stream.close()

    async def __aenter__(self) -> AsyncTextStream:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()
