"""Auth: every route but /health needs a key, two keys rotate, and no key ever reaches a log.

Checked on the real stack (its gateway's uvicorn access log and app log are the subprocess's output),
on the fake-upstream gateway process started with two keys, and in-process with every logger at DEBUG.
"""

from __future__ import annotations

import logging

import httpx
import pytest

from benchmarks.soak import KEY as PAIR_KEY
from benchmarks.soak import gateway_pair
from gateway import Settings, create_app
from gateway import auth as auth_module

from ..conftest import Stack
from ..gateway.conftest import FakeUpstream

#: Every route of the gateway except /health, with a body that would be valid with a key.
PROTECTED: list[tuple[str, str, dict | None]] = [
    ("GET", "/ready", None),
    ("GET", "/metrics", None),
    ("GET", "/grammars", None),
    ("GET", "/grammars/python", None),
    ("GET", "/v1/models", None),
    ("POST", "/v1/chat/completions", {"messages": [{"role": "user", "content": "hi"}], "max_tokens": 2}),
    ("POST", "/v1/completions", {"prompt": "hi", "max_tokens": 2}),
    ("POST", "/generate", {"prompt": "hi", "max_tokens": 2}),
    ("POST", "/v1/generate", {"prompt": "hi", "max_tokens": 2}),
    ("POST", "/generate/batch", {"requests": [{"prompt": "hi", "max_tokens": 2}]}),
    ("POST", "/v1/generate/batch", {"requests": [{"prompt": "hi", "max_tokens": 2}]}),
]
WRONG_KEY = "sk-wrong-secret-4242424242"


def bad_headers(real_key: str) -> list[dict[str, str]]:
    """Missing, wrong, a prefix or an extension of the real key, the wrong scheme, empty."""
    return [
        {},
        {"Authorization": f"Bearer {WRONG_KEY}"},
        {"Authorization": f"Bearer {real_key[:-1]}"},
        {"Authorization": f"Bearer {real_key}x"},
        {"Authorization": f"Basic {real_key}"},
        {"Authorization": "Bearer"},
        {"X-Api-Key": real_key},
    ]


def assert_refused(response: httpx.Response, presented: dict[str, str]) -> None:
    assert response.status_code == 401, response.text
    assert response.headers["www-authenticate"] == "Bearer"
    error = response.json()["error"]
    assert error["type"] == "authentication_error" and error["code"] == "invalid_api_key"
    assert "API key" in error["message"]
    for value in presented.values():  # no presented key is echoed back
        _, _, token = value.rpartition(" ")
        if token and token != "Bearer":
            assert token not in response.text


def test_every_route_but_health_refuses_missing_or_wrong_keys_on_the_real_stack(stack: Stack) -> None:
    with httpx.Client(base_url=stack.base_url, timeout=60) as client:
        assert client.get("/health").status_code == 200
        for method, path, body in PROTECTED:
            for headers in bad_headers(stack.api_key):
                assert_refused(client.request(method, path, json=body, headers=headers), headers)
            good = client.request(method, path, json=body, headers=stack.headers)
            assert good.status_code == 200, f"{method} {path}: {good.text[:300]}"


def test_the_stack_logs_hold_no_key(stack: Stack) -> None:
    """The stack's output (uvicorn access log, gateway and supervisor logs, vLLM) after the requests above."""
    with httpx.Client(base_url=stack.base_url, timeout=60) as client:
        client.get("/grammars", headers={"Authorization": f"Bearer {WRONG_KEY}"})
        client.post("/generate", json={"prompt": "x", "max_tokens": 2}, headers=stack.headers)
    log = stack.log_path.read_text(errors="replace")
    assert '"GET /grammars HTTP/1.1" 401' in log, "the access log is on, so this check means something"
    for secret in (stack.api_key, WRONG_KEY, "Authorization", "Bearer "):
        assert secret not in log


def test_two_keys_rotate_and_the_gateway_process_logs_neither(tmp_path) -> None:  # type: ignore[no-untyped-def]
    old, new = PAIR_KEY, "sk-rotated-in-9876543210fedcba"
    with gateway_pair(tmp_path / "gateway.log", {"MAZE_API_KEYS": f"{old},{new}"}) as pair:
        with httpx.Client(base_url=pair.gateway_url, timeout=30) as client:
            body = {"messages": [{"role": "user", "content": "tag"}], "max_tokens": 2}
            for key in (old, new):
                response = client.post("/v1/chat/completions", json=body, headers={"Authorization": f"Bearer {key}"})
                assert response.status_code == 200, response.text
            for headers in bad_headers(new):
                assert_refused(client.post("/v1/chat/completions", json=body, headers=headers), headers)
        log = pair.log_text()
    assert '"POST /v1/chat/completions HTTP/1.1" 401' in log and '"POST /v1/chat/completions HTTP/1.1" 200' in log
    for secret in (old, new, new[:-1], WRONG_KEY, "Authorization", "Bearer "):
        assert secret not in log


def test_no_logger_sees_a_key_even_at_debug(caplog: pytest.LogCaptureFixture) -> None:
    from fastapi.testclient import TestClient

    caplog.set_level(logging.DEBUG)
    upstream = FakeUpstream()
    settings = Settings(
        api_keys=["sk-client-key-1", "sk-client-key-2"],
        upstream_url="http://upstream.test",
        upstream_api_key="sk-upstream-key-3",
        upstream_wait_seconds=0.2,
    )
    with TestClient(create_app(settings, transport=httpx.MockTransport(upstream))) as client:
        for key in ("sk-client-key-1", "sk-client-key-2", WRONG_KEY):
            headers = {"Authorization": f"Bearer {key}"}
            client.post("/v1/chat/completions", json={"messages": [{"role": "user", "content": "x"}]}, headers=headers)
            client.post("/generate", json={"prompt": "x"}, headers=headers)
            client.get("/ready", headers=headers)
    assert upstream.requests and upstream.requests[-1].headers["authorization"] == "Bearer sk-upstream-key-3"
    assert caplog.records, "logging was captured"
    for secret in ("sk-client-key-1", "sk-client-key-2", "sk-upstream-key-3", WRONG_KEY):
        assert secret not in caplog.text


def test_every_key_is_compared_in_constant_time_with_no_early_exit(monkeypatch: pytest.MonkeyPatch) -> None:
    compared: list[bytes] = []
    real = auth_module.hmac.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        compared.append(b)
        return real(a, b)

    monkeypatch.setattr(auth_module.hmac, "compare_digest", spy)
    assert auth_module.key_matches("first", ["first", "second", "third"])
    assert compared == [b"first", b"second", b"third"], "a match must not stop the loop early"
