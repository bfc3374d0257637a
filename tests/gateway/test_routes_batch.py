"""``POST /generate/batch``: order, per-item failures, the size cap and bounded concurrency."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest
from fastapi.testclient import TestClient

from .conftest import AUTH, FakeUpstream, completion, make_client


@dataclass
class SlowUpstream:
    """Answers item ``i`` (prompt ``item<i>``) later the smaller ``i`` is, and counts requests in flight."""

    count: int
    in_flight: int = 0
    max_in_flight: int = 0

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        index = int(re.search(r"item(\d+)", json.loads(request.content)["messages"][-1]["content"]).group(1))
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            await asyncio.sleep(0.01 * (self.count - index))
        finally:
            self.in_flight -= 1
        if index == 3:
            return httpx.Response(500, json={"error": {"message": "engine fell over"}})
        return httpx.Response(200, json=completion(f"out{index}"))


def items(count: int) -> list[dict[str, object]]:
    return [{"prompt": f"item{i}", "max_tokens": 8} for i in range(count)]


@pytest.fixture
def batch_client(upstream: FakeUpstream) -> Iterator[TestClient]:
    with make_client(upstream, served_model_name="tiny", max_batch_size=8, max_batch_concurrency=3) as client:
        yield client


def test_results_keep_order_and_concurrency_stays_bounded(batch_client: TestClient, upstream: FakeUpstream) -> None:
    slow = SlowUpstream(count=8)
    upstream.handler = slow  # type: ignore[assignment]  # MockTransport awaits async handlers
    response = batch_client.post("/v1/generate/batch", json={"requests": items(8), "max_concurrency": 50}, headers=AUTH)
    assert response.status_code == 200
    results = response.json()["results"]
    assert [r["code"] for r in results if r["success"]] == [f"out{i}" for i in range(8) if i != 3]
    assert results[3]["success"] is False and results[3]["error"]["message"] == "engine fell over"
    assert slow.max_in_flight == 3  # the settings cap wins over the request's 50

    slow.max_in_flight = 0
    batch_client.post("/generate/batch", json={"requests": items(8), "max_concurrency": 2}, headers=AUTH)
    assert slow.max_in_flight == 2


def test_item_has_the_generate_shape(batch_client: TestClient) -> None:
    item = {"prompt": "Write a function", "max_tokens": 16, "language": "python"}
    single = batch_client.post("/generate", json=item, headers=AUTH).json()
    batch = batch_client.post("/generate/batch", json={"requests": [item]}, headers=AUTH).json()
    assert batch["success"] is True and len(batch["results"]) == 1
    result = batch["results"][0]
    assert result.keys() == single.keys() and result["metadata"].keys() == single["metadata"].keys()
    assert result["code"] == single["code"] and result["metadata"]["grammar_constrained"] is True


def test_invalid_items_fail_alone_before_anything_is_sent(batch_client: TestClient, upstream: FakeUpstream) -> None:
    requests = [
        {"prompt": "ok", "grammar": 'start: "a"'},
        {"prompt": "bad grammar", "grammar": "start: ("},
        {"prompt": "bad language", "language": "cobol"},
        {"max_tokens": 5},
        {"prompt": "zero", "max_tokens": 0},
        {"prompt": "both", "grammar": 'start: "a"', "json_schema": {"type": "integer"}},
    ]
    response = batch_client.post("/generate/batch", json={"requests": requests}, headers=AUTH)
    assert response.status_code == 200
    results = response.json()["results"]
    assert results[0]["success"] is True
    errors = [r["error"] for r in results[1:]]
    assert all(r["success"] is False for r in results[1:])
    assert [e["code"] for e in errors] == [
        "invalid_grammar", "invalid_constraint", "invalid_request", "invalid_request", None,
    ]  # fmt: skip
    assert "cobol" in errors[1]["message"]
    assert errors[2]["param"] == "prompt" and "prompt" in errors[2]["message"]
    assert errors[3]["param"] == "max_tokens"
    assert [b["messages"][-1]["content"] for b in upstream.bodies()] == ["ok"]


def test_batch_size_cap_and_empty_batch_are_400(batch_client: TestClient, upstream: FakeUpstream) -> None:
    response = batch_client.post("/generate/batch", json={"requests": items(9)}, headers=AUTH)
    assert response.status_code == 400
    body = response.json()
    assert body["success"] is False and body["error"]["code"] == "batch_too_large"
    assert "8" in body["error"]["message"] and "MAZE_MAX_BATCH_SIZE" in body["error"]["message"]
    for bad in ({"requests": []}, {"requests": "x"}, {"requests": items(1), "max_concurrency": 0}, {}):
        response = batch_client.post("/v1/generate/batch", json=bad, headers=AUTH)
        assert response.status_code == 400 and response.json()["success"] is False, bad
    assert not upstream.requests


def test_body_too_large_says_success_false(upstream: FakeUpstream) -> None:
    with make_client(upstream, max_body_bytes=100) as client:
        response = client.post("/generate/batch", json={"requests": items(20)}, headers=AUTH)
        assert response.status_code == 413 and response.json()["success"] is False


def test_metrics_count_items(batch_client: TestClient) -> None:
    requests = [*items(2), {"prompt": "bad", "grammar": "start: ("}]
    batch_client.post("/generate/batch", json={"requests": requests}, headers=AUTH)
    text = batch_client.get("/metrics", headers=AUTH).text
    assert 'maze_batch_items_total{outcome="ok"} 2.0' in text
    assert 'maze_batch_items_total{outcome="error"} 1.0' in text
    assert 'maze_tokens_total{kind="completion"} 10.0' in text  # 5 per item, as /generate counts
    assert 'maze_constrained_requests_total{kind="grammar",source="grammar"}' not in text  # rejected, not sent
    assert 'maze_requests_total{route="/generate/batch",status="200"} 1.0' in text


def test_a_batch_that_cannot_finish_in_time_is_refused_up_front(upstream: FakeUpstream) -> None:
    """10 items, 2 at a time, 100 tokens at 10 tok/s = 5 waves x 10 s = 50 s > a 30 s deadline."""
    settings = {"batch_deadline_seconds": 30, "batch_tokens_per_second": 10, "max_batch_concurrency": 2}
    with make_client(upstream, **settings) as client:
        slow = [{"prompt": f"item{i}", "max_tokens": 100} for i in range(10)]
        response = client.post("/generate/batch", json={"requests": slow}, headers=AUTH)
        assert response.status_code == 400
        error = response.json()["error"]
        assert error["code"] == "batch_too_slow" and error["param"] == "requests"
        assert "about 50 s" in error["message"] and "MAZE_BATCH_DEADLINE_SECONDS" in error["message"]
        assert not upstream.requests  # refused before anything reached vLLM
        # Three waves of 100 tokens (30 s) fit; so do all 10 items at 50 tokens (25 s).
        for fits in (slow[:6], [{**item, "max_tokens": 50} for item in slow]):
            response = client.post("/generate/batch", json={"requests": fits}, headers=AUTH)
            assert response.status_code == 200, response.text
            assert all(r["success"] for r in response.json()["results"])


def test_without_a_deadline_no_batch_is_refused_for_its_length(upstream: FakeUpstream) -> None:
    with make_client(upstream, max_batch_concurrency=1, batch_tokens_per_second=0.001) as client:
        response = client.post("/generate/batch", json={"requests": items(3)}, headers=AUTH)
        assert response.status_code == 200
