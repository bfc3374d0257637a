"""A fake upstream (httpx.MockTransport) for fast unit tests of the gateway's own behaviour.

It records every request the gateway sends, so tests can assert on the exact body vLLM would get.
Behaviour that depends on vLLM itself is tested against the real server (tests/e2e).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from gateway import Settings, create_app

KEY = "sk-test-key"
AUTH = {"Authorization": f"Bearer {KEY}"}


def completion(content: str = "x = 1\n", model: str = "tiny") -> dict[str, Any]:
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "model": model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 7, "completion_tokens": 5, "total_tokens": 12},
    }


def sse_chunks(parts: list[str], done: bool = True) -> list[bytes]:
    chunks = [
        b"data: " + json.dumps({"choices": [{"index": 0, "delta": {"content": p}}]}).encode() + b"\n\n" for p in parts
    ]
    if done:
        chunks.append(b"data: [DONE]\n\n")
    return chunks


@dataclass
class FakeUpstream:
    """Answers like vLLM; ``handler`` can be replaced per test."""

    requests: list[httpx.Request] = field(default_factory=list)
    handler: Callable[[httpx.Request], httpx.Response] | None = None

    def bodies(self) -> list[dict[str, Any]]:
        return [json.loads(r.content) for r in self.requests if r.content]

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if self.handler is not None:
            return self.handler(request)
        if request.url.path == "/health":
            return httpx.Response(200)
        if request.url.path == "/v1/models":
            return httpx.Response(200, json={"object": "list", "data": [{"id": "tiny", "object": "model"}]})
        body = json.loads(request.content)
        if body.get("stream"):
            return httpx.Response(
                200, headers={"content-type": "text/event-stream"}, content=_aiter(sse_chunks(["a", "b"]))
            )
        return httpx.Response(200, json=completion())


async def _aiter(chunks: list[bytes]) -> AsyncIterator[bytes]:
    for chunk in chunks:
        yield chunk


def make_client(upstream: FakeUpstream, **overrides: Any) -> TestClient:
    values: dict[str, Any] = {
        "api_keys": [KEY],
        "upstream_url": "http://upstream.test",
        "upstream_wait_seconds": 0.5,
    }
    settings = Settings(**{**values, **overrides})
    return TestClient(create_app(settings, transport=httpx.MockTransport(upstream)), raise_server_exceptions=False)


@pytest.fixture
def upstream() -> FakeUpstream:
    return FakeUpstream()


@pytest.fixture
def client(upstream: FakeUpstream) -> Iterator[TestClient]:
    with make_client(upstream) as test_client:
        yield test_client
