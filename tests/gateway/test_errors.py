import httpx
from fastapi.testclient import TestClient

from .conftest import AUTH, FakeUpstream, make_client


def test_malformed_json_is_400(client: TestClient) -> None:
    headers = {**AUTH, "content-type": "application/json"}
    response = client.post("/v1/chat/completions", content=b"{not json", headers=headers)
    assert response.status_code == 400
    assert "not valid JSON" in response.json()["error"]["message"]


def test_non_utf8_body_is_400(client: TestClient) -> None:
    headers = {**AUTH, "content-type": "application/json"}
    response = client.post("/generate", content=b'{"prompt": "\xff\xfe"}', headers=headers)
    assert response.status_code == 400 and response.json()["success"] is False


def test_unknown_route_is_openai_shaped_404(client: TestClient) -> None:
    response = client.get("/v1/nope", headers=AUTH)
    assert response.status_code == 404 and "no route" in response.json()["error"]["message"]


def test_body_over_limit_is_413(upstream: FakeUpstream) -> None:
    with make_client(upstream, max_body_bytes=1000) as client:
        body = {"messages": [{"role": "user", "content": "x" * 2000}]}
        response = client.post("/v1/chat/completions", json=body, headers=AUTH)
        assert response.status_code == 413 and "MAZE_MAX_BODY_BYTES" in response.json()["error"]["message"]


def test_upstream_down_is_503_with_retry_after(upstream: FakeUpstream) -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    upstream.handler = refuse
    with make_client(upstream, upstream_wait_seconds=0.3, retry_after_seconds=7) as client:
        for stream in (False, True):
            body = {"model": "t", "messages": [{"role": "user", "content": "x"}], "stream": stream}
            response = client.post("/v1/chat/completions", json=body, headers=AUTH)
            assert response.status_code == 503 and response.headers["retry-after"] == "7"
            assert "not reachable" in response.json()["error"]["message"]
    assert len(upstream.requests) > 2  # retried while waiting


def test_upstream_timeout_is_504(upstream: FakeUpstream) -> None:
    def slow(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("timed out", request=request)

    upstream.handler = slow
    with make_client(upstream) as client:
        body = {"model": "t", "messages": [{"role": "user", "content": "x"}]}
        response = client.post("/v1/chat/completions", json=body, headers=AUTH)
        assert response.status_code == 504 and response.json()["error"]["code"] == "upstream_timeout"
