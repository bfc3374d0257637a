"""Admission limits: header size, and bounded concurrency with a queue (429 + Retry-After past it)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from gateway import Settings, create_app
from gateway.limits import AdmissionGate

from .conftest import AUTH, FakeUpstream, completion, make_client

pytestmark = pytest.mark.anyio

CHAT = {"messages": [{"role": "user", "content": "hi"}], "max_tokens": 4}


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def test_gate_admits_up_to_the_limit_then_queues_in_order() -> None:
    gate = AdmissionGate(limit=1, max_waiting=2)
    assert await gate.acquire(timeout=1)
    order: list[int] = []

    async def waiter(n: int) -> None:
        assert await gate.acquire(timeout=5)
        order.append(n)

    tasks = [asyncio.create_task(waiter(n)) for n in (1, 2)]
    await asyncio.sleep(0)
    assert gate.waiting == 2
    assert not await gate.acquire(timeout=5), "a third waiter must be refused at once"
    gate.release()
    await asyncio.sleep(0)
    assert order == [1]
    gate.release()
    await asyncio.gather(*tasks)
    assert order == [1, 2] and gate.active == 1 and gate.waiting == 0
    gate.release()
    assert gate.active == 0


async def test_gate_waiter_gives_up_after_its_timeout_and_a_cancelled_one_leaves_the_queue() -> None:
    gate = AdmissionGate(limit=1, max_waiting=5)
    assert await gate.acquire(timeout=1)
    assert not await gate.acquire(timeout=0.01)
    assert gate.waiting == 0
    task = asyncio.create_task(gate.acquire(timeout=30))
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert gate.waiting == 0
    gate.release()
    assert gate.active == 0


def test_headers_over_the_limit_are_431_openai_shaped(client: TestClient, upstream: FakeUpstream) -> None:
    response = client.post("/v1/chat/completions", json=CHAT, headers={**AUTH, "X-Junk": "a" * 70_000})
    assert response.status_code == 431
    error = response.json()["error"]
    assert "MAZE_MAX_HEADER_BYTES" in error["message"] and error["code"] == "headers_too_large"
    assert not upstream.requests


def test_maze_route_errors_from_middleware_carry_success_false(upstream: FakeUpstream) -> None:
    with make_client(upstream, max_header_bytes=1024) as client:
        response = client.post("/generate", json={"prompt": "x"}, headers={**AUTH, "X-Junk": "a" * 2000})
    assert response.status_code == 431 and response.json()["success"] is False


class HeldUpstream:
    """A fake vLLM whose answers wait until the test releases them, so the gateway's slots stay taken."""

    def __init__(self) -> None:
        self.release = asyncio.Event()
        self.seen = 0

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        if request.url.path == "/v1/models":
            return httpx.Response(200, json={"data": [{"id": "tiny"}]})
        self.seen += 1
        await self.release.wait()
        return httpx.Response(200, json=completion())


@asynccontextmanager
async def gateway_client(upstream: HeldUpstream, **overrides: Any) -> AsyncIterator[httpx.AsyncClient]:
    settings = Settings(api_keys=["sk-test-key"], upstream_url="http://upstream.test", **overrides)
    app = create_app(settings, transport=httpx.MockTransport(upstream))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://gateway.test", headers=AUTH) as client:
            yield client


async def until(predicate: Any) -> None:
    for _ in range(1000):
        if predicate():
            return
        await asyncio.sleep(0.001)
    raise AssertionError("condition never held")


async def test_over_capacity_gets_429_with_retry_after_and_the_rest_complete() -> None:
    upstream = HeldUpstream()
    async with gateway_client(
        upstream, max_concurrent_requests=2, max_queued_requests=1, retry_after_seconds=7
    ) as client:
        running = [asyncio.create_task(client.post("/v1/chat/completions", json=CHAT)) for _ in range(2)]
        await until(lambda: upstream.seen == 2)
        queued = asyncio.create_task(client.post("/generate", json={"prompt": "x"}))
        await asyncio.sleep(0.05)
        assert upstream.seen == 2, "the third request must wait for a slot"

        refused = await client.post("/v1/chat/completions", json=CHAT)
        assert refused.status_code == 429
        assert refused.headers["retry-after"] == "7"
        error = refused.json()["error"]
        assert error["type"] == "rate_limit_error" and error["code"] == "overloaded"
        assert "MAX_CONCURRENT_REQUESTS" in error["message"] and "retry" in error["message"]

        refused_maze = await client.post("/generate", json={"prompt": "x"})
        assert refused_maze.status_code == 429 and refused_maze.json()["success"] is False

        assert (await client.get("/grammars")).status_code == 200, "non-generation routes are not limited"
        upstream.release.set()
        for response in await asyncio.gather(*running, queued):
            assert response.status_code == 200, response.text


async def test_a_queued_request_gives_up_after_the_queue_wait() -> None:
    upstream = HeldUpstream()
    async with gateway_client(upstream, max_concurrent_requests=1, queue_wait_seconds=0.05) as client:
        running = asyncio.create_task(client.post("/v1/completions", json={"prompt": "x"}))
        await until(lambda: upstream.seen == 1)
        refused = await client.post("/v1/completions", json={"prompt": "y"})
        assert refused.status_code == 429 and "MAZE_QUEUE_WAIT_SECONDS" in refused.json()["error"]["message"]
        upstream.release.set()
        assert (await running).status_code == 200


async def test_a_stream_holds_its_slot_until_its_last_byte() -> None:
    release = asyncio.Event()

    async def chunks() -> AsyncIterator[bytes]:
        yield b'data: {"choices": [{"index": 0, "delta": {"content": "a"}}]}\n\n'
        await release.wait()
        yield b"data: [DONE]\n\n"

    async def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/v1/models":
            return httpx.Response(200, json={"data": [{"id": "tiny"}]})
        if json.loads(request.content).get("stream"):
            return httpx.Response(200, headers={"content-type": "text/event-stream"}, content=chunks())
        return httpx.Response(200, json=completion())

    settings = Settings(api_keys=["sk-test-key"], upstream_url="http://u.test", max_concurrent_requests=1)
    settings = settings.model_copy(update={"max_queued_requests": 0})
    app = create_app(settings, transport=httpx.MockTransport(handler))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://g.test", headers=AUTH) as client:
            stream = asyncio.create_task(client.post("/v1/chat/completions", json={**CHAT, "stream": True}))
            await asyncio.sleep(0.05)
            busy = await client.post("/v1/chat/completions", json=CHAT)
            assert busy.status_code == 429, "the open stream must still hold the only slot"
            release.set()
            done = await stream
            assert done.status_code == 200 and done.text.endswith("data: [DONE]\n\n")
            assert (await client.post("/v1/chat/completions", json=CHAT)).status_code == 200
