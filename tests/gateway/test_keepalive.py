"""gateway.keepalive: slow non-streamed answers start at once and arrive after whitespace heartbeats."""

from __future__ import annotations

import asyncio
import json

import httpx

from gateway.keepalive import DEFERRED_HEADER

from .conftest import AUTH, FakeUpstream, completion, make_client

CHAT = {"model": "tiny", "messages": [{"role": "user", "content": "hi"}]}


def slow_upstream(delay: float, status: int = 200) -> FakeUpstream:
    upstream = FakeUpstream()

    async def answer(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/v1/models":
            return httpx.Response(200, json={"object": "list", "data": [{"id": "tiny", "object": "model"}]})
        await asyncio.sleep(delay)
        if status != 200:
            return httpx.Response(status, json={"error": {"message": "Grammar error: bad", "type": "BadRequestError"}})
        return httpx.Response(200, json=completion("x = 1\n"))

    upstream.handler = answer  # type: ignore[assignment]
    return upstream


def test_slow_answer_is_started_early_and_still_parses_as_json() -> None:
    with make_client(slow_upstream(1.0), keepalive_after_seconds=0.2, keepalive_interval_seconds=0.1) as client:
        response = client.post("/v1/chat/completions", json=CHAT, headers=AUTH)
    assert response.status_code == 200
    assert response.headers[DEFERRED_HEADER] == "1"
    assert response.content.startswith(b"  ")  # heartbeats: one space per interval
    assert response.json()["choices"][0]["message"]["content"] == "x = 1\n"


def test_maze_generate_is_kept_alive_too() -> None:
    body = {"prompt": "p", "grammar": 'start: "x"'}
    with make_client(slow_upstream(0.8), keepalive_after_seconds=0.2, keepalive_interval_seconds=0.1) as client:
        response = client.post("/generate", json=body, headers=AUTH)
    assert response.headers.get(DEFERRED_HEADER) == "1"
    assert json.loads(response.content)["code"] == "x = 1\n"


def test_an_error_after_the_deferral_is_in_the_body() -> None:
    with make_client(slow_upstream(0.8, 400), keepalive_after_seconds=0.2, keepalive_interval_seconds=0.1) as client:
        response = client.post("/v1/chat/completions", json=CHAT, headers=AUTH)
    assert response.status_code == 200 and response.headers[DEFERRED_HEADER] == "1"
    assert response.json()["error"]["message"] == "Grammar error: bad"


def test_fast_answers_and_streams_are_untouched() -> None:
    with make_client(slow_upstream(0.0), keepalive_after_seconds=0.5) as client:
        fast = client.post("/v1/chat/completions", json=CHAT, headers=AUTH)
        assert fast.status_code == 200 and DEFERRED_HEADER not in fast.headers
        assert fast.content.startswith(b"{")
    with make_client(FakeUpstream(), keepalive_after_seconds=0.01) as client:
        stream = client.post("/v1/chat/completions", json={**CHAT, "stream": True}, headers=AUTH)
        assert DEFERRED_HEADER not in stream.headers and stream.text.startswith("data: ")


def test_zero_turns_it_off() -> None:
    with make_client(slow_upstream(0.5, 400), keepalive_after_seconds=0) as client:
        response = client.post("/v1/chat/completions", json=CHAT, headers=AUTH)
    assert response.status_code == 400 and DEFERRED_HEADER not in response.headers
