"""A fast fake OpenAI upstream: chat completions, plain and streamed, in the exact OpenAI wire format.

``python -m benchmarks.fake_upstream --port P [--chunks 64]``

It must cost far less than anything measured through it, so it is a bare asyncio protocol on uvloop
with httptools' parser (the parser uvicorn uses) and precomputed answers: no framework, no per-request
allocation beyond the JSON parse of the request body (to read ``stream``). Streams are sent with
chunked transfer encoding, one ``data:`` event per write, yielding to the loop between events so each
goes out as its own segment, the way vLLM emits tokens. Every stream carries ``CHUNKS`` content
chunks (``"t0 "``, ``"t1 "``, ...), the last with ``finish_reason: "stop"``, optionally a usage chunk
(``stream_options.include_usage``), then ``data: [DONE]``: the load generator checks all of it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
from typing import Any

import httptools
import uvloop

from .common import without_delay

MODEL = "bench-model"
CREATED = 1_764_000_000
COMPLETION_ID = "chatcmpl-bench0000000000000000000000000000"
#: Content chunks per stream (the issue's "64-chunk stream").
CHUNKS = 64


def chunk_texts(chunks: int = CHUNKS) -> list[str]:
    """The content of each streamed chunk; their concatenation is the whole completion."""
    return [f"t{i} " for i in range(chunks)]


def completion_body(chunks: int = CHUNKS) -> bytes:
    """A non-streaming ``chat.completion`` whose content is the same text a stream carries."""
    body = {
        "id": COMPLETION_ID,
        "object": "chat.completion",
        "created": CREATED,
        "model": MODEL,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "".join(chunk_texts(chunks)), "tool_calls": []},
                "logprobs": None,
                "finish_reason": "stop",
                "stop_reason": None,
            }
        ],
        "usage": {"prompt_tokens": 12, "total_tokens": 12 + chunks, "completion_tokens": chunks},
        "system_fingerprint": None,
    }
    return json.dumps(body, separators=(",", ":")).encode()


def _event(payload: dict[str, Any]) -> bytes:
    return b"data: " + json.dumps(payload, separators=(",", ":")).encode() + b"\n\n"


def stream_events(chunks: int = CHUNKS, include_usage: bool = False) -> list[bytes]:
    """The SSE events of one streamed chat completion, exactly as OpenAI (and vLLM) frame them."""
    events = []
    for index, text in enumerate(chunk_texts(chunks)):
        delta: dict[str, Any] = {"role": "assistant", "content": text} if index == 0 else {"content": text}
        last = index == chunks - 1
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": "stop" if last else None}
        payload: dict[str, Any] = {
            "id": COMPLETION_ID,
            "object": "chat.completion.chunk",
            "created": CREATED,
            "model": MODEL,
            "system_fingerprint": None,
            "choices": [choice],
        }
        events.append(_event(payload))
    if include_usage:
        usage = {"prompt_tokens": 12, "total_tokens": 12 + chunks, "completion_tokens": chunks}
        events.append(
            _event(
                {
                    "id": COMPLETION_ID,
                    "object": "chat.completion.chunk",
                    "created": CREATED,
                    "model": MODEL,
                    "choices": [],
                    "usage": usage,
                }
            )
        )
    events.append(b"data: [DONE]\n\n")
    return events


def _chunked(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


def _response(status: str, content_type: bytes, body: bytes) -> bytes:
    head = b"HTTP/1.1 %s\r\ncontent-type: %s\r\ncontent-length: %d\r\n\r\n" % (status.encode(), content_type, len(body))
    return head + body


class Answers:
    """Every byte the fake ever sends, built once."""

    def __init__(self, chunks: int) -> None:
        self.completion = _response("200 OK", b"application/json", completion_body(chunks))
        models = {"object": "list", "data": [{"id": MODEL, "object": "model", "created": CREATED, "owned_by": "bench"}]}
        self.models = _response("200 OK", b"application/json", json.dumps(models).encode())
        self.health = _response("200 OK", b"application/json", b"{}")
        self.not_found = _response("404 Not Found", b"application/json", b'{"error":{"message":"not found"}}')
        self.stream_head = (
            b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream; charset=utf-8\r\ntransfer-encoding: chunked\r\n\r\n"
        )
        self.stream = [_chunked(e) for e in stream_events(chunks)]
        self.stream_usage = [_chunked(e) for e in stream_events(chunks, include_usage=True)]


class FakeOpenAI(asyncio.Protocol):
    """One connection: parse requests with httptools, answer from :class:`Answers`."""

    def __init__(self, answers: Answers) -> None:
        self.answers = answers
        self.parser = httptools.HttpRequestParser(self)
        self.transport: asyncio.Transport | None = None
        self.url = b""
        self.body: list[bytes] = []
        self.queue: asyncio.Queue[tuple[bytes, bytes, bytes]] | None = None
        self.worker: asyncio.Task[None] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = without_delay(transport)

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError:
            assert self.transport is not None
            self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        if self.worker is not None:
            self.worker.cancel()

    # httptools callbacks
    def on_message_begin(self) -> None:
        self.url = b""
        self.body = []

    def on_url(self, url: bytes) -> None:
        self.url += url

    def on_body(self, body: bytes) -> None:
        self.body.append(body)

    def on_message_complete(self) -> None:
        method = self.parser.get_method()
        path = self.url.split(b"?", 1)[0]
        body = b"".join(self.body)
        if self.queue is None and not (method == b"POST" and b'"stream"' in body):
            self._answer_now(method, path, body)
            return
        # A stream is being (or about to be) written: keep answers in order behind it.
        if self.queue is None:
            self.queue = asyncio.Queue()
            self.worker = asyncio.get_running_loop().create_task(self._drain())
        self.queue.put_nowait((method, path, body))

    def _answer_now(self, method: bytes, path: bytes, body: bytes) -> None:
        assert self.transport is not None
        answers = self.answers
        if method == b"POST" and path in (b"/v1/chat/completions", b"/chat/completions"):
            self.transport.write(answers.completion)
        elif path == b"/v1/models":
            self.transport.write(answers.models)
        elif path in (b"/health", b"/health/"):
            self.transport.write(answers.health)
        else:
            self.transport.write(answers.not_found)

    async def _drain(self) -> None:
        assert self.queue is not None
        while True:
            method, path, body = await self.queue.get()
            request = json.loads(body) if body else {}
            if request.get("stream") and path in (b"/v1/chat/completions", b"/chat/completions"):
                await self._stream(bool((request.get("stream_options") or {}).get("include_usage")))
            else:
                self._answer_now(method, path, body)

    async def _stream(self, include_usage: bool) -> None:
        assert self.transport is not None
        transport = self.transport
        transport.write(self.answers.stream_head)
        for event in self.answers.stream_usage if include_usage else self.answers.stream:
            await asyncio.sleep(0)  # one event per write, as a token-by-token server sends them
            if transport.is_closing():
                return
            transport.write(event)
        transport.write(b"0\r\n\r\n")


async def serve(host: str, port: int, chunks: int) -> None:
    answers = Answers(chunks)
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: FakeOpenAI(answers), host, port, backlog=1024, reuse_address=True)
    async with server:
        await server.serve_forever()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.fake_upstream", description=__doc__.split("\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--chunks", type=int, default=CHUNKS)
    args = parser.parse_args(argv)
    uvloop.run(serve(args.host, args.port, args.chunks))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
