"""The fallback upstream with real servers: vLLM going away and coming back, a provider taking over.

The shared ``stack`` vLLM is never stopped. This module runs its own gateway (uvicorn, in a thread) whose
primary is that vLLM reached through a TCP relay the test switches off (connections refused, open ones
cut) and on again, and whose fallback is an in-process OpenAI-style provider that records every body it
receives and, like OpenAI, rejects fields it does not know.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from app.ports import free_port
from gateway import Settings, create_app

from ..conftest import Stack
from .grammar_match import ARITH, assert_obeys, json_schema_grammar
from .test_faults import running_requests, wait_until

PROVIDER_KEY = "sk-provider-e2e-0042"
PROVIDER_MODEL = "provider-gpt"
SCHEMA = {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"], "additionalProperties": False}
PROVIDER_ANSWER = '{"n": 7}'
#: Request fields OpenAI's chat completions accept (the subset these tests send); the provider
#: answers anything else with OpenAI's 400, so a vLLM-only field that leaks through fails a test.
OPENAI_FIELDS = {
    "model",
    "messages",
    "max_tokens",
    "temperature",
    "seed",
    "stream",
    "stream_options",
    "response_format",
}
RETRY_AFTER = 5


# --- the pieces --------------------------------------------------------------------------------------------------


class Relay:
    """A TCP relay to ``target_port`` that can be switched off and on, on the same port."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.port = free_port()
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.server: asyncio.Server | None = None
        self.writers: set[asyncio.StreamWriter] = set()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _run(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout=10)

    def start(self) -> None:
        self._run(self._start())

    def stop(self) -> None:
        """Refuse new connections and cut every open one (as a crashed server would)."""
        self._run(self._stop())

    def close(self) -> None:
        self.stop()
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)

    async def _start(self) -> None:
        if self.server is None:
            self.server = await asyncio.start_server(self._handle, "127.0.0.1", self.port, reuse_address=True)

    async def _stop(self) -> None:
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()
            self.server = None
        for writer in list(self.writers):
            writer.transport.abort()
        self.writers.clear()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        except OSError:
            writer.transport.abort()
            return
        self.writers |= {writer, up_writer}

        async def pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
            try:
                while data := await source.read(65536):
                    sink.write(data)
                    await sink.drain()
            except OSError:
                pass
            finally:
                sink.transport.abort()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))
        self.writers -= {writer, up_writer}


@dataclass
class Provider:
    """An OpenAI-style chat completions server that records what it receives."""

    received: list[dict[str, Any]] = field(default_factory=list)
    gate: threading.Event = field(default_factory=threading.Event)
    """Answers wait while this is clear (set by default)."""

    def __post_init__(self) -> None:
        self.gate.set()

    def app(self) -> Starlette:
        return Starlette(routes=[Route("/v1/chat/completions", self.chat, methods=["POST"])])

    async def chat(self, request: Request) -> Response:
        if request.headers.get("authorization") != f"Bearer {PROVIDER_KEY}":
            return JSONResponse({"error": {"message": "Incorrect API key provided"}}, status_code=401)
        body = await request.json()
        unknown = sorted(set(body) - OPENAI_FIELDS)
        if unknown:
            message = f"Unrecognized request argument supplied: {', '.join(unknown)}"
            return JSONResponse({"error": {"message": message, "type": "invalid_request_error"}}, status_code=400)
        self.received.append(body)
        while not self.gate.is_set():
            await asyncio.sleep(0.01)
        content = PROVIDER_ANSWER if "response_format" in body else "an unconstrained answer"
        if body.get("stream"):
            return StreamingResponse(self._events(body["model"], content), media_type="text/event-stream")
        return JSONResponse(
            {
                "id": "chatcmpl-provider",
                "object": "chat.completion",
                "model": body["model"],
                "choices": [
                    {"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}
                ],
                "usage": {"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 7},
            }
        )

    async def _events(self, model: str, content: str) -> AsyncIterator[str]:
        half = len(content) // 2
        deltas = [{"role": "assistant", "content": ""}, {"content": content[:half]}, {"content": content[half:]}, {}]
        for index, delta in enumerate(deltas):
            choice = {"index": 0, "delta": delta, "finish_reason": "stop" if index == len(deltas) - 1 else None}
            chunk = {"id": "c", "object": "chat.completion.chunk", "model": model, "choices": [choice]}
            yield f"data: {json.dumps(chunk)}\n\n"
        yield "data: [DONE]\n\n"

    def ids(self) -> list[str]:
        """The request ids (``id=...`` in the last message) the provider has received, in order."""
        return [body["messages"][-1]["content"].split("id=")[-1] for body in self.received]


class ServerThread:
    """An ASGI app served by uvicorn on a free port, in a background thread."""

    def __init__(self, app: Any) -> None:
        self.port = free_port()
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> ServerThread:
        self.thread.start()
        assert wait_until(lambda: self.server.started, timeout=30), "server did not start"
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)


@dataclass
class Rig:
    relay: Relay
    provider: Provider
    gateway_url: str
    http: httpx.Client

    def chat(self, body: dict[str, Any]) -> httpx.Response:
        return self.http.post(f"{self.gateway_url}/v1/chat/completions", json=body)


@pytest.fixture(scope="module")
def rig(stack: Stack) -> Iterator[Rig]:
    relay = Relay(int(stack.upstream_url.rsplit(":", 1)[1]))
    relay.start()
    provider = Provider()
    with ServerThread(provider.app()) as provider_server:
        settings = Settings(
            api_keys=[],  # loopback only, whatever the environment says
            upstream_url=relay.url,
            served_model_name=stack.model,
            upstream_wait_seconds=3,
            retry_after_seconds=RETRY_AFTER,
            fallback_url=f"{provider_server.url}/v1",
            fallback_model=PROVIDER_MODEL,
            fallback_api_key=PROVIDER_KEY,
            fallback_wait_seconds=1.0,
        )
        with (
            ServerThread(create_app(settings)) as gateway_server,
            httpx.Client(timeout=120, limits=httpx.Limits(max_connections=64)) as http,
        ):
            try:
                yield Rig(relay=relay, provider=provider, gateway_url=gateway_server.url, http=http)
            finally:
                provider.gate.set()
                relay.close()


@pytest.fixture
def primary_down(rig: Rig) -> Iterator[Rig]:
    rig.relay.stop()
    try:
        yield rig
    finally:
        rig.relay.start()


def chat(content: str, **extra: Any) -> dict[str, Any]:
    return {"messages": [{"role": "user", "content": content}], "max_tokens": 24, "seed": 1, **extra}


def json_schema_format(name: str = "point") -> dict[str, Any]:
    return {"type": "json_schema", "json_schema": {"name": name, "schema": SCHEMA}}


def sse_text(raw: str) -> str:
    """The content deltas of an SSE chat stream, joined; fails on an error event."""
    text = []
    for line in raw.splitlines():
        if not line.startswith("data: ") or line == "data: [DONE]":
            continue
        event = json.loads(line.removeprefix("data: "))
        assert "error" not in event, event
        text.append(event["choices"][0]["delta"].get("content") or "")
    return "".join(text)


# --- the story ---------------------------------------------------------------------------------------------------


def test_primary_up_serves_grammars_and_says_so(rig: Rig) -> None:
    response = rig.chat(chat("Arithmetic, please.", structured_outputs={"grammar": ARITH}, temperature=0.8))
    assert response.status_code == 200, response.text
    assert response.headers["x-maze-upstream"] == "primary"
    choice = response.json()["choices"][0]
    assert_obeys(ARITH, choice["message"]["content"], choice["finish_reason"])
    assert rig.provider.received == []


def test_primary_down_json_schema_is_served_by_the_fallback_translated(primary_down: Rig) -> None:
    rig = primary_down
    before = len(rig.provider.received)
    response = rig.chat(chat("A point.", response_format=json_schema_format(), top_k=5, repetition_penalty=1.1))
    assert response.status_code == 200, response.text
    assert response.headers["x-maze-upstream"] == "fallback"
    assert response.json()["choices"][0]["message"]["content"] == PROVIDER_ANSWER
    assert response.json()["model"] == PROVIDER_MODEL

    (sent,) = rig.provider.received[before:]
    assert sent == {
        "model": PROVIDER_MODEL,
        "messages": [{"role": "user", "content": "A point."}],
        "max_tokens": 24,
        "seed": 1,
        "response_format": {"type": "json_schema", "json_schema": {"name": "point", "schema": SCHEMA, "strict": True}},
    }


def test_primary_down_generate_json_schema_and_stream(primary_down: Rig) -> None:
    rig = primary_down
    before = len(rig.provider.received)
    generated = rig.http.post(f"{rig.gateway_url}/generate", json={"prompt": "A point.", "json_schema": SCHEMA})
    assert generated.status_code == 200, generated.text
    result = generated.json()
    assert result["success"] is True and result["code"] == PROVIDER_ANSWER
    assert result["metadata"]["upstream"] == "fallback" and generated.headers["x-maze-upstream"] == "fallback"
    sent = rig.provider.received[before]
    assert "structured_outputs" not in sent
    assert sent["response_format"]["json_schema"] == {"name": "maze_output", "schema": SCHEMA, "strict": True}

    body = chat("A point, streamed.", stream=True, response_format=json_schema_format())
    with rig.http.stream("POST", f"{rig.gateway_url}/v1/chat/completions", json=body) as response:
        assert response.status_code == 200
        assert response.headers["x-maze-upstream"] == "fallback"
        assert sse_text(response.read().decode()) == PROVIDER_ANSWER
    assert rig.provider.received[-1]["stream"] is True
    assert rig.provider.received[-1]["response_format"]["json_schema"]["strict"] is True


@pytest.mark.parametrize("stream", [False, True])
def test_primary_down_grammar_request_gets_503_not_the_fallback(primary_down: Rig, stream: bool) -> None:
    rig = primary_down
    before = len(rig.provider.received)
    response = rig.chat(chat("Arithmetic.", structured_outputs={"grammar": ARITH}, stream=stream))
    assert response.status_code == 503
    assert response.headers["retry-after"] == str(RETRY_AFTER)
    error = response.json()["error"]
    assert error["code"] == "grammar_backend_unavailable"
    assert "grammar backend" in error["message"] and "unavailable" in error["message"]

    generated = rig.http.post(f"{rig.gateway_url}/generate", json={"prompt": "code", "language": "python"})
    assert generated.status_code == 503 and generated.json()["success"] is False
    assert "grammar backend" in generated.json()["error"]["message"]
    assert len(rig.provider.received) == before, "a grammar request reached the fallback"


def test_primary_back_takes_the_traffic_again(rig: Rig) -> None:
    rig.relay.stop()
    try:
        assert rig.chat(chat("x", response_format=json_schema_format())).headers["x-maze-upstream"] == "fallback"
    finally:
        rig.relay.start()
    before = len(rig.provider.received)
    grammar = rig.chat(chat("Arithmetic.", structured_outputs={"grammar": ARITH}, temperature=0.8))
    assert grammar.status_code == 200 and grammar.headers["x-maze-upstream"] == "primary"
    choice = grammar.json()["choices"][0]
    assert_obeys(ARITH, choice["message"]["content"], choice["finish_reason"])

    schema = rig.chat(chat("A point.", response_format=json_schema_format()))
    assert schema.status_code == 200 and schema.headers["x-maze-upstream"] == "primary"
    choice = schema.json()["choices"][0]
    assert_obeys(json_schema_grammar(SCHEMA), choice["message"]["content"], choice["finish_reason"])
    assert len(rig.provider.received) == before


def _answers(rig: Rig, bodies: list[dict[str, Any]]) -> list[httpx.Response]:
    with ThreadPoolExecutor(max_workers=len(bodies)) as pool:
        return list(pool.map(rig.chat, bodies))


def test_requests_cut_by_a_crash_are_answered_once_by_the_fallback(rig: Rig, stack: Stack) -> None:
    """vLLM vanishes while it generates for N requests: each gets one answer, from the fallback."""
    count = 4
    ids = [f"cut{i}" for i in range(count)]
    bodies = [chat(f"Write a long essay. id={i}", max_tokens=400, ignore_eos=True) for i in ids]
    before = len(rig.provider.received)
    with ThreadPoolExecutor(max_workers=1) as pool:
        pending = pool.submit(_answers, rig, bodies)
        assert wait_until(lambda: running_requests(stack) >= count, timeout=60), "vLLM never had them all"
        rig.relay.stop()
        try:
            responses = pending.result(timeout=120)
        finally:
            rig.relay.start()
    assert [r.status_code for r in responses] == [200] * count, [r.text for r in responses]
    assert {r.headers["x-maze-upstream"] for r in responses} == {"fallback"}
    assert sorted(rig.provider.ids()[before:]) == sorted(ids), "each cut request reaches the fallback exactly once"
    assert "ignore_eos" not in rig.provider.received[-1]
    assert wait_until(lambda: running_requests(stack) == 0, timeout=30), "vLLM still generating for cut requests"


def test_nothing_lost_or_duplicated_across_the_switch_back(rig: Rig) -> None:
    """N requests held by the fallback while vLLM comes back and N more go to it: 2N answers, each once."""
    count = 6
    early = [f"early{i}" for i in range(count)]
    late = [f"late{i}" for i in range(count)]
    before = len(rig.provider.received)
    rig.provider.gate.clear()
    rig.relay.stop()
    with ThreadPoolExecutor(max_workers=2) as pool:
        try:
            held = pool.submit(_answers, rig, [chat(f"Say something. id={i}") for i in early])
            assert wait_until(lambda: len(rig.provider.received) - before == count, timeout=60)
        finally:
            rig.relay.start()
        served_by_primary = pool.submit(_answers, rig, [chat(f"Say something. id={i}") for i in late]).result(120)
        assert not held.done(), "the fallback answered while its gate was closed"
        rig.provider.gate.set()
        served_by_fallback = held.result(timeout=120)

    assert [r.status_code for r in served_by_fallback + served_by_primary] == [200] * (2 * count)
    assert [r.headers["x-maze-upstream"] for r in served_by_fallback] == ["fallback"] * count
    assert [r.headers["x-maze-upstream"] for r in served_by_primary] == ["primary"] * count
    assert [r.json()["choices"][0]["message"]["content"] for r in served_by_fallback] == [
        "an unconstrained answer"
    ] * count
    assert sorted(rig.provider.ids()[before:]) == sorted(early), "fallback got each early request exactly once"

    metrics = rig.http.get(f"{rig.gateway_url}/metrics").text
    assert 'maze_upstream_requests_total{upstream="fallback"}' in metrics
    assert 'maze_upstream_requests_total{upstream="primary"}' in metrics
