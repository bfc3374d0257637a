import httpx
from fastapi.testclient import TestClient

import grammars

from .conftest import AUTH, FakeUpstream, make_client


def test_health_needs_no_key(client: TestClient) -> None:
    assert client.get("/health").json() == {"status": "ok"}


def test_ready_follows_upstream_health(upstream: FakeUpstream) -> None:
    with make_client(upstream) as client:
        assert client.get("/ready", headers=AUTH).status_code == 200
        upstream.handler = lambda request: httpx.Response(503)
        response = client.get("/ready", headers=AUTH)
        assert response.status_code == 503 and int(response.headers["retry-after"]) > 0


def test_metrics_count_requests_and_rejections(client: TestClient) -> None:
    body = {"messages": [{"role": "user", "content": "x"}], "guided_grammar": "start: nope"}
    client.post("/v1/chat/completions", json=body, headers=AUTH)
    client.post("/v1/chat/completions", json={**body, "guided_grammar": 'start: "a"'}, headers=AUTH)
    text = client.get("/metrics", headers=AUTH).text
    assert 'maze_requests_total{route="/v1/chat/completions",status="400"} 1.0' in text
    assert 'maze_requests_total{route="/v1/chat/completions",status="200"} 1.0' in text
    assert "maze_grammar_rejections_total 1.0" in text
    assert 'maze_tokens_total{kind="completion"} 5.0' in text
    assert 'maze_constrained_requests_total{kind="grammar",source="guided_grammar"} 1.0' in text


def test_grammar_library_routes(client: TestClient) -> None:
    listing = client.get("/grammars", headers=AUTH).json()["data"]
    assert {g["name"] for g in listing} == set(grammars.names())
    python = client.get("/grammars/python", headers=AUTH).json()
    assert python["grammar"] == grammars.load("python") and python["language"]
    missing = client.get("/grammars/cobol", headers=AUTH)
    assert missing.status_code == 404 and "available" in missing.json()["error"]["message"]
