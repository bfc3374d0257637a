"""The fallback upstream: who may go there, what it is sent, and what everyone else gets while vLLM is down.

The primary (vLLM) and the provider are both faked with one ``httpx.MockTransport`` that routes by host.
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError

from gateway import Settings, create_app
from gateway.constraints import Constraint
from gateway.fallback import may_use_fallback, to_fallback
from gateway.proxy import UPSTREAM_HEADER

from .conftest import AUTH, KEY, FakeUpstream, _aiter, completion, sse_chunks

PROVIDER_KEY = "sk-provider-secret-4242"
SCHEMA = {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"], "additionalProperties": False}
CHAT = {"messages": [{"role": "user", "content": "hi"}], "max_tokens": 8}
JSON_CHAT = {**CHAT, "response_format": {"type": "json_schema", "json_schema": {"name": "point", "schema": SCHEMA}}}
GRAMMAR = 'start: "yes" | "no"'


def refuse(request: httpx.Request) -> httpx.Response:
    raise httpx.ConnectError("connection refused", request=request)


def answer(status: int, message: str = "boom") -> Callable[[httpx.Request], httpx.Response]:
    """Completions answer ``status``; the model list still works."""

    def handler(request: httpx.Request) -> httpx.Response:
        if not request.url.path.endswith("/completions"):
            return FakeUpstream()(request)
        return httpx.Response(status, json={"error": {"message": message}})

    return handler


class Provider(FakeUpstream):
    """An OpenAI-style provider: answers with model ``gpt-test`` and a JSON object."""

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if self.handler is not None:
            return self.handler(request)
        if json.loads(request.content).get("stream"):
            return httpx.Response(
                200, headers={"content-type": "text/event-stream"}, content=_aiter(sse_chunks(['{"n":', "1}"]))
            )
        return httpx.Response(200, json=completion('{"n": 1}', model="gpt-test"))


def make_fallback_client(primary: FakeUpstream, provider: Provider, **overrides: Any) -> TestClient:
    values: dict[str, Any] = {
        "api_keys": [KEY],
        "upstream_url": "http://upstream.test",
        "upstream_wait_seconds": 0.3,
        "fallback_url": "https://provider.test/v1",
        "fallback_model": "gpt-test",
        "fallback_api_key": PROVIDER_KEY,
        "fallback_wait_seconds": 0.3,
    }
    settings = Settings(**{**values, **overrides})

    def route(request: httpx.Request) -> httpx.Response:
        return provider(request) if request.url.host == "provider.test" else primary(request)

    return TestClient(create_app(settings, transport=httpx.MockTransport(route)), raise_server_exceptions=False)


@pytest.fixture
def provider() -> Provider:
    return Provider()


@pytest.fixture
def client(upstream: FakeUpstream, provider: Provider) -> Iterator[TestClient]:
    with make_fallback_client(upstream, provider) as test_client:
        yield test_client


def completions_sent(upstream: FakeUpstream) -> list[httpx.Request]:
    return [r for r in upstream.requests if r.url.path.endswith("/completions")]


# --- the decision table -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "kind", "allowed"),
    [
        ("/v1/chat/completions", None, True),
        ("/v1/chat/completions", "json", True),
        ("/v1/chat/completions", "grammar", False),
        ("/v1/chat/completions", "regex", False),
        ("/v1/chat/completions", "choice", False),
        ("/v1/chat/completions", "json_object", False),
        ("/v1/chat/completions", "structural_tag", False),
        ("/v1/completions", None, False),
        ("/v1/completions", "json", False),
    ],
)
def test_who_may_use_the_fallback(path: str, kind: str | None, allowed: bool) -> None:
    constraint = Constraint(kind=kind, source="test") if kind else None
    assert may_use_fallback(path, constraint) is allowed


def test_structured_outputs_json_becomes_a_strict_response_format() -> None:
    body = {
        "model": "maze-tiny",
        **CHAT,
        "temperature": 0.5,
        "seed": 3,
        "structured_outputs": {"json": {**SCHEMA, "x-guidance": {"whitespace_flexible": False}}},
        "top_k": 5,
        "repetition_penalty": 1.1,
        "ignore_eos": True,
        "min_tokens": 2,
    }
    original = json.dumps(body)
    assert to_fallback(body, "gpt-test") == {
        "model": "gpt-test",
        **CHAT,
        "temperature": 0.5,
        "seed": 3,
        "response_format": {
            "type": "json_schema",
            "json_schema": {"name": "maze_output", "schema": SCHEMA, "strict": True},
        },
    }
    assert json.dumps(body) == original, "the primary's body must not change"


def test_response_format_keeps_name_and_description_and_turns_strict_on() -> None:
    body = {
        **CHAT,
        "response_format": {
            "type": "json_schema",
            "json_schema": {"name": "point", "description": "a point", "schema": {**SCHEMA, "x-guidance": {}}},
        },
    }
    assert to_fallback(body, "m")["response_format"]["json_schema"] == {
        "name": "point",
        "description": "a point",
        "schema": SCHEMA,
        "strict": True,
    }


def test_unconstrained_body_loses_only_vllm_fields() -> None:
    body = {"model": "maze-tiny", **CHAT, "stream": True, "stream_options": {"include_usage": True}, "top_k": 1}
    assert to_fallback(body, "m") == {"model": "m", **CHAT, "stream": True, "stream_options": {"include_usage": True}}


# --- settings -------------------------------------------------------------------------------------------------


def test_fallback_is_off_by_default() -> None:
    settings = Settings()
    assert settings.fallback_url is None and settings.fallback_model is None and settings.fallback_api_key is None


def test_fallback_url_needs_a_model_and_the_error_hides_the_key() -> None:
    with pytest.raises(ValidationError, match="MAZE_FALLBACK_MODEL") as info:
        Settings(fallback_url="https://provider.test/v1", fallback_api_key=PROVIDER_KEY)
    assert PROVIDER_KEY not in str(info.value)


def test_fallback_settings_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MAZE_FALLBACK_URL", "https://api.example.com/v1/")
    monkeypatch.setenv("MAZE_FALLBACK_API_KEY", PROVIDER_KEY)
    monkeypatch.setenv("MAZE_FALLBACK_MODEL", "gpt-test")
    settings = Settings()
    assert settings.fallback_url == "https://api.example.com/v1"
    assert settings.fallback_api_key is not None and settings.fallback_api_key.get_secret_value() == PROVIDER_KEY
    assert PROVIDER_KEY not in repr(settings)


# --- primary up: nothing changes --------------------------------------------------------------------------------


def test_primary_up_serves_everything_and_says_so(
    client: TestClient, upstream: FakeUpstream, provider: Provider
) -> None:
    for body in (CHAT, JSON_CHAT, {**CHAT, "structured_outputs": {"grammar": GRAMMAR}}):
        response = client.post("/v1/chat/completions", json=body, headers=AUTH)
        assert response.status_code == 200
        assert response.headers[UPSTREAM_HEADER] == "primary"
    assert client.get("/v1/models", headers=AUTH).headers[UPSTREAM_HEADER] == "primary"
    generated = client.post("/generate", json={"prompt": "p", "grammar": GRAMMAR}, headers=AUTH)
    assert generated.headers[UPSTREAM_HEADER] == "primary"
    assert generated.json()["metadata"]["upstream"] == "primary"
    assert provider.requests == []


def test_primary_4xx_is_its_answer_not_a_reason_to_switch(upstream: FakeUpstream, provider: Provider) -> None:
    upstream.handler = answer(400, "This model's maximum context length is 2048 tokens.")
    with make_fallback_client(upstream, provider) as client:
        response = client.post("/v1/chat/completions", json=JSON_CHAT, headers=AUTH)
    assert response.status_code == 400
    assert response.headers[UPSTREAM_HEADER] == "primary"
    assert "maximum context length" in response.json()["error"]["message"]
    assert provider.requests == []


# --- primary down ------------------------------------------------------------------------------------------------


def test_json_schema_request_goes_to_the_fallback_translated(upstream: FakeUpstream, provider: Provider) -> None:
    upstream.handler = refuse
    with make_fallback_client(upstream, provider) as client:
        response = client.post("/v1/chat/completions", json={**JSON_CHAT, "top_k": 3}, headers=AUTH)
    assert response.status_code == 200
    assert response.headers[UPSTREAM_HEADER] == "fallback"
    assert response.json()["choices"][0]["message"]["content"] == '{"n": 1}'
    (sent,) = provider.requests
    assert str(sent.url) == "https://provider.test/v1/chat/completions"
    assert sent.headers["authorization"] == f"Bearer {PROVIDER_KEY}"
    assert json.loads(sent.content) == {
        **CHAT,
        "model": "gpt-test",
        "response_format": {"type": "json_schema", "json_schema": {"name": "point", "schema": SCHEMA, "strict": True}},
    }


@pytest.mark.parametrize("named", ["request", "settings"])
@pytest.mark.parametrize("stream", [False, True])
def test_a_known_model_waits_for_the_primary_only_fallback_wait_seconds(
    upstream: FakeUpstream, provider: Provider, named: str, stream: bool
) -> None:
    """With the model already known (in the request, or ``MAZE_SERVED_MODEL_NAME``), no model lookup
    waits first: the POST to the primary itself must give up after ``fallback_wait_seconds``."""
    upstream.handler = refuse
    body = {**CHAT, "stream": stream, **({"model": "maze-tiny"} if named == "request" else {})}
    served_model = {"served_model_name": "maze-tiny"} if named == "settings" else {}
    with make_fallback_client(
        upstream, provider, upstream_wait_seconds=30.0, fallback_wait_seconds=0.2, **served_model
    ) as client:
        started = time.monotonic()
        response = client.post("/v1/chat/completions", json=body, headers=AUTH)
        elapsed = time.monotonic() - started
    assert response.status_code == 200 and response.headers[UPSTREAM_HEADER] == "fallback"
    assert elapsed < 10.0, f"waited {elapsed:.1f} s for the primary, not fallback_wait_seconds"


@pytest.mark.parametrize(
    "constraint",
    [
        {"structured_outputs": {"grammar": GRAMMAR}},
        {"structured_outputs": {"regex": "[a-z]+"}},
        {"guided_choice": ["up", "down"]},
        {"language": "python"},
        {"response_format": {"type": "json_object"}},
    ],
)
def test_grammar_requests_get_503_never_an_unconstrained_answer(
    upstream: FakeUpstream, provider: Provider, constraint: dict[str, Any]
) -> None:
    upstream.handler = refuse
    with make_fallback_client(upstream, provider, retry_after_seconds=7) as client:
        for stream in (False, True):
            response = client.post("/v1/chat/completions", json={**CHAT, **constraint, "stream": stream}, headers=AUTH)
            assert response.status_code == 503
            assert response.headers["retry-after"] == "7"
            error = response.json()["error"]
            assert error["code"] == "grammar_backend_unavailable"
            assert "grammar backend" in error["message"] and "never sent to the fallback" in error["message"]
            assert UPSTREAM_HEADER not in response.headers
        metrics = client.get("/metrics", headers=AUTH).text
    assert provider.requests == []
    assert re.search(r'maze_fallback_refusals_total\{kind="[a-z_]+"\} 2\.0', metrics)


def test_text_completions_are_not_sent_to_the_fallback(upstream: FakeUpstream, provider: Provider) -> None:
    upstream.handler = refuse
    with make_fallback_client(upstream, provider) as client:
        response = client.post(
            "/v1/completions", json={"model": "tiny", "prompt": "def", "max_tokens": 3}, headers=AUTH
        )
    assert response.status_code == 503 and response.json()["error"]["code"] == "upstream_unavailable"
    assert provider.requests == []


def test_primary_5xx_sends_json_requests_to_the_fallback_only(upstream: FakeUpstream, provider: Provider) -> None:
    upstream.handler = answer(500, "engine fell over")
    with make_fallback_client(upstream, provider) as client:
        served = client.post("/v1/chat/completions", json=JSON_CHAT, headers=AUTH)
        refused = client.post(
            "/v1/chat/completions", json={**CHAT, "structured_outputs": {"grammar": GRAMMAR}}, headers=AUTH
        )
    assert served.status_code == 200 and served.headers[UPSTREAM_HEADER] == "fallback"
    assert refused.status_code == 500 and refused.headers[UPSTREAM_HEADER] == "primary"
    assert len(provider.requests) == 1


def test_connection_lost_before_an_answer_goes_to_the_fallback(upstream: FakeUpstream, provider: Provider) -> None:
    def drop(request: httpx.Request) -> httpx.Response:
        raise httpx.RemoteProtocolError("Server disconnected without sending a response.", request=request)

    upstream.handler = drop
    with make_fallback_client(upstream, provider) as client:
        response = client.post("/v1/chat/completions", json=CHAT, headers=AUTH)
    assert response.status_code == 200 and response.headers[UPSTREAM_HEADER] == "fallback"
    assert len(provider.requests) == 1


def test_stream_through_the_fallback(upstream: FakeUpstream, provider: Provider) -> None:
    upstream.handler = refuse
    with (
        make_fallback_client(upstream, provider) as client,
        client.stream("POST", "/v1/chat/completions", json={**JSON_CHAT, "stream": True}, headers=AUTH) as response,
    ):
        assert response.status_code == 200
        assert response.headers[UPSTREAM_HEADER] == "fallback"
        assert b"".join(response.iter_raw()) == b"".join(sse_chunks(['{"n":', "1}"]))
    sent = json.loads(provider.requests[0].content)
    assert sent["stream"] is True and sent["response_format"]["json_schema"]["strict"] is True


def test_stream_falls_back_on_a_primary_5xx(upstream: FakeUpstream, provider: Provider) -> None:
    upstream.handler = answer(503, "busy")
    with make_fallback_client(upstream, provider) as client:
        response = client.post("/v1/chat/completions", json={**CHAT, "stream": True}, headers=AUTH)
    assert response.status_code == 200 and response.headers[UPSTREAM_HEADER] == "fallback"
    assert response.text.endswith("data: [DONE]\n\n")


def test_once_down_the_primary_is_tried_once_and_traffic_returns(upstream: FakeUpstream, provider: Provider) -> None:
    upstream.handler = refuse
    with make_fallback_client(upstream, provider, fallback_wait_seconds=1.0) as client:
        client.post("/v1/chat/completions", json=CHAT, headers=AUTH)
        first = len(upstream.requests)
        assert first > 1, "the first request waits for the primary, retrying its connection"
        second = client.post("/v1/chat/completions", json=CHAT, headers=AUTH)
        assert second.headers[UPSTREAM_HEADER] == "fallback"
        assert len(upstream.requests) == first + 1, "known down: one try, no waiting"

        upstream.handler = None  # the primary is back
        back = client.post("/v1/chat/completions", json=CHAT, headers=AUTH)
        assert back.headers[UPSTREAM_HEADER] == "primary"
        grammar = client.post("/v1/chat/completions", json={**CHAT, "guided_grammar": GRAMMAR}, headers=AUTH)
        assert grammar.status_code == 200 and grammar.headers[UPSTREAM_HEADER] == "primary"
        metrics = client.get("/metrics", headers=AUTH).text
    assert 'maze_upstream_requests_total{upstream="fallback"} 2.0' in metrics
    assert 'maze_upstream_requests_total{upstream="primary"} 2.0' in metrics


def test_fallback_down_too_is_a_503(upstream: FakeUpstream, provider: Provider) -> None:
    upstream.handler = refuse
    provider.handler = refuse
    with make_fallback_client(upstream, provider) as client:
        response = client.post("/v1/chat/completions", json=CHAT, headers=AUTH)
    assert response.status_code == 503 and "retry-after" in response.headers
    assert "fallback provider failed too (ConnectError)" in response.json()["error"]["message"]


def test_fallback_4xx_reaches_the_client_marked_fallback(upstream: FakeUpstream, provider: Provider) -> None:
    upstream.handler = refuse
    provider.handler = answer(400, "Invalid schema for response_format 'point'")
    with make_fallback_client(upstream, provider) as client:
        response = client.post("/v1/chat/completions", json=JSON_CHAT, headers=AUTH)
    assert response.status_code == 400 and response.headers[UPSTREAM_HEADER] == "fallback"
    assert "Invalid schema" in response.json()["error"]["message"]


def test_without_a_fallback_the_primary_outage_is_the_usual_503(upstream: FakeUpstream) -> None:
    upstream.handler = refuse
    with TestClient(
        create_app(
            Settings(api_keys=[KEY], upstream_url="http://upstream.test", upstream_wait_seconds=0.3),
            transport=httpx.MockTransport(upstream),
        ),
        raise_server_exceptions=False,
    ) as client:
        response = client.post("/v1/chat/completions", json=JSON_CHAT, headers=AUTH)
    assert response.status_code == 503 and response.json()["error"]["code"] == "upstream_unavailable"


def test_the_provider_key_is_never_logged(
    upstream: FakeUpstream, provider: Provider, caplog: pytest.LogCaptureFixture
) -> None:
    upstream.handler = refuse
    provider.handler = answer(500, "provider trouble")
    with caplog.at_level(logging.DEBUG), make_fallback_client(upstream, provider) as client:
        client.post("/v1/chat/completions", json=CHAT, headers=AUTH)
        client.post("/generate", json={"prompt": "p"}, headers=AUTH)
    assert "fallback https://provider.test/v1 (model gpt-test)" in caplog.text
    assert PROVIDER_KEY not in caplog.text


# --- Maze routes --------------------------------------------------------------------------------------------------


def test_generate_json_schema_through_the_fallback(upstream: FakeUpstream, provider: Provider) -> None:
    upstream.handler = refuse
    with make_fallback_client(upstream, provider) as client:
        response = client.post("/generate", json={"prompt": "p", "json_schema": SCHEMA, "max_tokens": 9}, headers=AUTH)
    assert response.status_code == 200
    assert response.headers[UPSTREAM_HEADER] == "fallback"
    result = response.json()
    assert result["code"] == '{"n": 1}'
    assert result["metadata"]["upstream"] == "fallback" and result["metadata"]["model"] == "gpt-test"
    sent = json.loads(provider.requests[0].content)
    assert "structured_outputs" not in sent
    assert sent["response_format"]["json_schema"] == {"name": "maze_output", "schema": SCHEMA, "strict": True}
    assert sent["max_tokens"] == 9 and sent["model"] == "gpt-test"


def test_generate_with_a_grammar_is_refused_with_success_false(upstream: FakeUpstream, provider: Provider) -> None:
    upstream.handler = refuse
    with make_fallback_client(upstream, provider) as client:
        response = client.post("/generate", json={"prompt": "p", "language": "python"}, headers=AUTH)
    assert response.status_code == 503 and "retry-after" in response.headers
    body = response.json()
    assert body["success"] is False and body["error"]["code"] == "grammar_backend_unavailable"
    assert provider.requests == []


def test_batch_items_each_say_where_they_were_served(upstream: FakeUpstream, provider: Provider) -> None:
    upstream.handler = refuse
    items = [
        {"prompt": "a", "json_schema": SCHEMA},
        {"prompt": "b", "grammar": GRAMMAR},
        {"prompt": "c"},
    ]
    with make_fallback_client(upstream, provider) as client:
        response = client.post("/generate/batch", json={"requests": items}, headers=AUTH)
    assert response.status_code == 200
    assert response.headers[UPSTREAM_HEADER] == "fallback"
    first, second, third = response.json()["results"]
    assert first["metadata"]["upstream"] == "fallback" and third["metadata"]["upstream"] == "fallback"
    assert second["success"] is False and second["error"]["code"] == "grammar_backend_unavailable"
    assert len(completions_sent(provider)) == 2


def test_batch_header_says_mixed_when_both_served(upstream: FakeUpstream, provider: Provider) -> None:
    fails = answer(500)
    upstream.handler = lambda request: fails(request) if b'"b"' in request.content else FakeUpstream()(request)
    with make_fallback_client(upstream, provider) as client:
        response = client.post("/generate/batch", json={"requests": [{"prompt": "a"}, {"prompt": "b"}]}, headers=AUTH)
    assert response.headers[UPSTREAM_HEADER] == "mixed"
    assert [r["metadata"]["upstream"] for r in response.json()["results"]] == ["primary", "fallback"]
