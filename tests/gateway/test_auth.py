import logging

import pytest
from fastapi.testclient import TestClient

from gateway.auth import key_matches

from .conftest import KEY, FakeUpstream, make_client

PROTECTED = [
    ("GET", "/ready"),
    ("GET", "/metrics"),
    ("GET", "/grammars"),
    ("GET", "/grammars/python"),
    ("GET", "/v1/models"),
    ("POST", "/v1/chat/completions"),
    ("POST", "/v1/completions"),
    ("POST", "/generate"),
    ("POST", "/v1/generate"),
    ("POST", "/generate/batch"),
    ("POST", "/v1/generate/batch"),
]


@pytest.mark.parametrize(("method", "path"), PROTECTED)
@pytest.mark.parametrize("header", [None, "Bearer wrong", "Basic abc", "Bearer "])
def test_protected_routes_reject_missing_or_wrong_key(
    client: TestClient, upstream: FakeUpstream, method: str, path: str, header: str | None
) -> None:
    headers = {"Authorization": header} if header else {}
    response = client.request(method, path, headers=headers, json={})
    assert response.status_code == 401
    error = response.json()["error"]
    assert error["type"] == "authentication_error" and KEY not in response.text
    assert not upstream.requests


def test_two_keys_allow_rotation(upstream: FakeUpstream) -> None:
    with make_client(upstream, api_keys=["old-key", "new-key"]) as client:
        for key in ("old-key", "new-key"):
            assert client.get("/grammars", headers={"Authorization": f"Bearer {key}"}).status_code == 200
        assert client.get("/grammars", headers={"Authorization": f"Bearer {KEY}"}).status_code == 401


def test_key_matches_any_configured_key() -> None:
    assert key_matches("new", ["old", "new"])
    assert key_matches("old", ["old", "new"])
    assert not key_matches("ol", ["old", "new"])
    assert not key_matches("", ["old"])


def test_keys_never_appear_in_logs(upstream: FakeUpstream, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    with make_client(upstream) as client:
        client.get("/ready", headers={"Authorization": "Bearer guessed-secret"})
        client.get("/ready", headers={"Authorization": f"Bearer {KEY}"})
    assert "guessed-secret" not in caplog.text and KEY not in caplog.text
