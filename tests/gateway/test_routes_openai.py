import json

import httpx
from fastapi.testclient import TestClient

from .conftest import AUTH, FakeUpstream, _aiter, make_client, sse_chunks

GRAMMAR = 'start: "yes" | "no"'
CHAT = {"model": "tiny", "messages": [{"role": "user", "content": "hi"}]}


def test_chat_is_forwarded_with_translated_constraint(client: TestClient, upstream: FakeUpstream) -> None:
    response = client.post("/v1/chat/completions", json={**CHAT, "guided_grammar": GRAMMAR}, headers=AUTH)
    assert response.status_code == 200
    assert response.json()["choices"][0]["message"]["content"] == "x = 1\n"
    sent = upstream.bodies()[-1]
    assert sent["structured_outputs"] == {"grammar": GRAMMAR}
    assert "guided_grammar" not in sent
    assert upstream.requests[-1].url.path == "/v1/chat/completions"


def test_unknown_fields_pass_through(client: TestClient, upstream: FakeUpstream) -> None:
    client.post("/v1/chat/completions", json={**CHAT, "top_k": 5, "seed": 3}, headers=AUTH)
    assert upstream.bodies()[-1] == {**CHAT, "top_k": 5, "seed": 3}


def test_missing_model_is_filled_from_upstream(client: TestClient, upstream: FakeUpstream) -> None:
    client.post("/v1/completions", json={"prompt": "def", "max_tokens": 3}, headers=AUTH)
    assert upstream.bodies()[-1]["model"] == "tiny"


def test_stream_is_passed_through_byte_for_byte(client: TestClient) -> None:
    with client.stream("POST", "/v1/chat/completions", json={**CHAT, "stream": True}, headers=AUTH) as r:
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/event-stream")
        assert b"".join(r.iter_raw()) == b"".join(sse_chunks(["a", "b"]))


def test_stream_cut_short_ends_with_error_event(upstream: FakeUpstream) -> None:
    upstream.handler = lambda request: httpx.Response(
        200, headers={"content-type": "text/event-stream"}, content=_aiter(sse_chunks(["a"], done=False))
    )
    with make_client(upstream) as client:
        text = client.post("/v1/chat/completions", json={**CHAT, "stream": True}, headers=AUTH).text
    events = [line.removeprefix("data: ") for line in text.splitlines() if line.startswith("data: ")]
    assert json.loads(events[-1])["error"]["code"] == "upstream_unavailable"


def test_upstream_4xx_is_passed_through_unchanged(upstream: FakeUpstream) -> None:
    body = {"error": {"message": "The model `nope` does not exist.", "type": "NotFoundError", "code": 404}}
    upstream.handler = lambda request: httpx.Response(404, json=body)
    with make_client(upstream) as client:
        for stream in (False, True):
            response = client.post("/v1/chat/completions", json={**CHAT, "stream": stream}, headers=AUTH)
            assert response.status_code == 404
            assert response.json() == body


def test_invalid_grammar_never_reaches_upstream(client: TestClient, upstream: FakeUpstream) -> None:
    for stream in (False, True):
        body = {**CHAT, "stream": stream, "structured_outputs": {"grammar": "start: missing"}}
        response = client.post("/v1/chat/completions", json=body, headers=AUTH)
        assert response.status_code == 400
        error = response.json()["error"]
        assert error["code"] == "invalid_grammar" and "unknown name" in error["message"]
    assert not [r for r in upstream.requests if r.url.path.endswith("completions")]


def test_models_lists_upstream_models(client: TestClient) -> None:
    assert client.get("/v1/models", headers=AUTH).json()["data"][0]["id"] == "tiny"


def test_bad_field_values_are_400_with_param(client: TestClient) -> None:
    for bad in ({"max_tokens": 0}, {"temperature": -1}, {"messages": []}, {"top_p": 0}):
        response = client.post("/v1/chat/completions", json={**CHAT, **bad}, headers=AUTH)
        assert response.status_code == 400, bad
        assert response.json()["error"]["param"] == next(iter(bad))
