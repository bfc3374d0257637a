"""``POST /generate/batch`` against the real vLLM: 16 mixed items, order kept, each obeying its constraint."""

from __future__ import annotations

from typing import Any

import httpx

import grammars

from ..conftest import Stack
from .grammar_match import assert_obeys, json_schema_grammar

SCHEMA = {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]}


def own_grammar(index: int) -> str:
    """A grammar whose every output names its position, so a reordered result is caught."""
    return f'start: "item{index}:" /[a-z]{{1,8}}/'


def mixed_batch() -> list[tuple[dict[str, Any], str | None]]:
    """16 items as ``(request, grammar its output must obey)``; ``None`` marks an item that must fail."""
    base = {"max_tokens": 24, "temperature": 0.8}
    kinds = ["own", "python", "own", "json", "invalid", "own", "schema", "python",
             "own", "unknown", "json", "own", "own", "python", "own", "own"]  # fmt: skip
    batch: list[tuple[dict[str, Any], str | None]] = []
    for index, kind in enumerate(kinds):
        prompt = {"prompt": f"Item {index}: write something short.", **base}
        if kind == "own":
            batch.append(({**prompt, "grammar": own_grammar(index)}, own_grammar(index)))
        elif kind in ("python", "json"):
            batch.append(({**prompt, "language": kind}, grammars.load(kind)))
        elif kind == "schema":
            batch.append(({**prompt, "json_schema": SCHEMA}, json_schema_grammar(SCHEMA)))
        elif kind == "invalid":
            batch.append(({**prompt, "grammar": "start: ("}, None))
        else:
            batch.append(({**prompt, "language": "cobol"}, None))
    return batch


def test_mixed_batch_keeps_order_and_constraints(stack: Stack) -> None:
    batch = mixed_batch()
    body = {"requests": [request for request, _ in batch], "max_concurrency": 16}
    response = httpx.post(f"{stack.base_url}/generate/batch", json=body, headers=stack.headers, timeout=120)
    assert response.status_code == 200, response.text
    data = response.json()
    assert data["success"] is True and len(data["results"]) == len(batch)
    for index, ((request, grammar), result) in enumerate(zip(batch, data["results"], strict=True)):
        if grammar is None:
            assert result["success"] is False and result["error"]["type"] == "invalid_request_error", result
            expected = "Grammar error" if "grammar" in request else "unknown language 'cobol'"
            assert expected in result["error"]["message"]
            continue
        assert result["success"] is True, result
        meta = result["metadata"]
        assert meta["grammar_constrained"] is True and meta["model"] == stack.model
        assert 0 < meta["tokens_generated"] <= 24
        if request.get("grammar"):
            assert result["code"].startswith(f"item{index}:"), (index, result["code"])
        assert_obeys(grammar, result["code"], meta["finish_reason"])


def test_batch_over_the_cap_is_400(stack: Stack) -> None:
    body = {"requests": [{"prompt": "x", "max_tokens": 1}] * 65}
    response = httpx.post(f"{stack.base_url}/v1/generate/batch", json=body, headers=stack.headers, timeout=30)
    assert response.status_code == 400
    assert response.json()["success"] is False and "MAZE_MAX_BATCH_SIZE" in response.json()["error"]["message"]
