"""Maze's provider payload, exactly as ``ModalProviderAdapter`` sends it, against the real vLLM."""

from __future__ import annotations

import httpx

import grammars

from ..conftest import Stack
from .grammar_match import assert_obeys


def test_maze_payload_returns_constrained_code(stack: Stack) -> None:
    payload = {"prompt": "Write a function that adds two numbers.", "max_tokens": 64, "temperature": 0.7,
               "language": "python"}  # fmt: skip
    response = httpx.post(f"{stack.base_url}/generate", json=payload, headers=stack.headers, timeout=120)
    assert response.status_code == 200, response.text
    data = response.json()
    meta = data["metadata"]
    assert data["success"] is True
    assert 0 < meta["tokens_generated"] <= 64 and meta["tokens"] == meta["tokens_generated"]
    assert meta["finish_reason"] in {"stop", "length"} and meta["grammar_constrained"] is True
    assert meta["model"] == stack.model
    assert_obeys(grammars.load("python"), data["code"], meta["finish_reason"])


def test_maze_payload_with_own_grammar(stack: Stack) -> None:
    grammar = 'start: "def f():\\n    return " NUMBER "\\n"\nNUMBER: /[0-9]{1,3}/'
    payload = {"prompt": "f", "max_tokens": 32, "temperature": 1.0, "grammar": grammar, "language": "python"}
    data = httpx.post(f"{stack.base_url}/v1/generate", json=payload, headers=stack.headers, timeout=120).json()
    assert data["success"] is True
    assert_obeys(grammar, data["code"], data["metadata"]["finish_reason"])


def test_maze_invalid_grammar_is_400_success_false(stack: Stack) -> None:
    payload = {"prompt": "x", "max_tokens": 8, "temperature": 0.5, "grammar": "start: ("}
    response = httpx.post(f"{stack.base_url}/generate", json=payload, headers=stack.headers, timeout=60)
    assert response.status_code == 400
    assert response.json()["success"] is False and "Grammar error" in response.json()["error"]["message"]


def test_maze_wrong_key_is_401(stack: Stack) -> None:
    payload = {"prompt": "x", "max_tokens": 8, "temperature": 0.5}
    response = httpx.post(f"{stack.base_url}/generate", json=payload, headers={"Authorization": "Bearer no"})
    assert response.status_code == 401 and response.json()["success"] is False
