"""gateway.drain: at shutdown, requests still waiting on the upstream get an answer, not a cut connection.

The app runs in-process with a mock upstream that takes its time; ``Drain.expire_after`` is what the
supervisor starts on SIGTERM (the whole path, signal included, is tested in tests/app/test_supervisor.py).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
import httpx
import pytest

from gateway import Settings, create_app
from gateway.drain import SHUTTING_DOWN

from .conftest import AUTH, KEY, completion

pytestmark = pytest.mark.anyio
CHAT = {"messages": [{"role": "user", "content": "hi"}], "max_tokens": 8}


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


class SlowUpstream:
    """Answers completions after ``delay`` seconds; counts the ones it was left waiting on."""

    def __init__(self, delay: float) -> None:
        self.delay = delay
        self.abandoned = 0

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        if request.url.path == "/v1/models":
            return httpx.Response(200, json={"object": "list", "data": [{"id": "tiny", "object": "model"}]})
        try:
            await anyio.sleep(self.delay)
        except anyio.get_cancelled_exc_class():
            self.abandoned += 1
            raise
        return httpx.Response(200, json=completion())


@asynccontextmanager
async def gateway(upstream: SlowUpstream) -> AsyncIterator[tuple[Any, httpx.AsyncClient]]:
    settings = Settings(api_keys=[KEY], upstream_url="http://upstream.test", retry_after_seconds=7)
    app = create_app(settings, transport=httpx.MockTransport(upstream))
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gw", headers=AUTH) as client,
    ):
        yield app, client


async def post_during_drain(
    app: Any, client: httpx.AsyncClient, path: str, body: dict[str, Any], grace: float
) -> httpx.Response:
    """POST ``body`` and, while it is in flight, run the shutdown drain with ``grace`` seconds."""
    responses: list[httpx.Response] = []

    async def ask() -> None:
        responses.append(await client.post(path, json=body))

    with anyio.fail_after(5):
        async with anyio.create_task_group() as group:
            group.start_soon(ask)
            await anyio.sleep(0.05)
            await app.state.drain.expire_after(grace)
    return responses[0]


async def test_a_request_unanswered_at_the_deadline_gets_503_with_retry_after() -> None:
    upstream = SlowUpstream(delay=30)
    async with gateway(upstream) as (app, client):
        response = await post_during_drain(app, client, "/v1/chat/completions", CHAT, 0.2)
    assert response.status_code == 503
    assert response.headers["retry-after"] == "7"
    assert response.json()["error"]["message"] == SHUTTING_DOWN
    assert upstream.abandoned == 1, "the upstream call is cancelled, so vLLM aborts the generation"


async def test_requests_that_finish_within_the_grace_period_are_untouched() -> None:
    upstream = SlowUpstream(delay=0.3)
    async with gateway(upstream) as (app, client):
        response = await post_during_drain(
            app, client, "/generate", {"prompt": "x", "max_tokens": 4}, 3
        )  # returns as soon as nothing is in flight
    assert response.status_code == 200 and response.json()["success"] is True
    assert upstream.abandoned == 0


async def test_each_batch_item_still_waiting_fails_with_the_shutdown_message() -> None:
    upstream = SlowUpstream(delay=30)
    async with gateway(upstream) as (app, client):
        batch = {"requests": [{"prompt": "a", "max_tokens": 4}, {"prompt": "b", "max_tokens": 4}]}
        response = await post_during_drain(app, client, "/generate/batch", batch, 0.2)
    results = json.loads(response.content)["results"]
    assert [r["success"] for r in results] == [False, False]
    assert all(r["error"]["message"] == SHUTTING_DOWN for r in results)


async def test_a_request_arriving_after_the_deadline_is_refused_at_once() -> None:
    upstream = SlowUpstream(delay=30)
    async with gateway(upstream) as (app, client):
        await app.state.drain.expire_after(0)
        with anyio.fail_after(5):
            response = await client.post("/v1/chat/completions", json=CHAT)
    assert response.status_code == 503 and response.json()["error"]["message"] == SHUTTING_DOWN
