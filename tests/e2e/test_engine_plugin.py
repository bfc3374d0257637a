"""The engine plugin changes how fast masks are made, never which tokens come out.

Two real CPU vLLMs on the same tiny model: the session's stack (plugin on, as users run it) and one
started with MAZE_ENGINE_PLUGIN=0 (vLLM as shipped). The same requests with the same seeds must give
the same token ids from both, for every library grammar and user grammars of each kind, streamed and
not, one at a time and 16 at once (the parallel fill only runs when a step has two or more constrained
sequences). Some requests are pushed to stop early (end-of-text logit bias), so steps mix running and
finished grammars. Errors must read the same.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

import grammars
from tests.conftest import Stack, serve_stack

MAX_TOKENS = 40
#: <|im_end|> and <|endoftext|>: raising them makes some generations stop once the grammar allows it.
END_OF_TEXT = {"151645": 6, "151643": 6}

USER_GRAMMARS: dict[str, dict[str, Any]] = {
    "lark": {"grammar": 'start: stmt+\nstmt: NAME "=" NUMBER ";" "\\n"\nNAME: /[a-z_]{1,8}/\nNUMBER: /[0-9]{1,4}/\n'},
    "json-schema": {
        "json": {
            "type": "object",
            "properties": {
                "name": {"type": "string", "maxLength": 12},
                "tags": {"type": "array", "items": {"type": "integer"}},
            },
            "required": ["name", "tags"],
            "x-guidance": {"whitespace_flexible": False},
        }
    },
    "regex": {"regex": r"(fn|def) [a-z]{1,10}\([a-z, ]{0,12}\)"},
}


@pytest.fixture(scope="module")
def stack_plugin_off(tiny_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """A second stack with MAZE_ENGINE_PLUGIN=0: vLLM exactly as shipped. Module-scoped, so a second
    vLLM shares the two cores only while this module runs."""
    with serve_stack(tiny_model, tmp_path_factory.mktemp("stack-plugin-off"), {"MAZE_ENGINE_PLUGIN": "0"}) as running:
        yield running


def constraints() -> dict[str, dict[str, Any]]:
    library = {name: {"grammar": grammars.load(name)} for name in grammars.names()}
    return {**library, **USER_GRAMMARS}


def request_body(model: str, name: str, constraint: dict[str, Any], seed: int, *, stream: bool) -> dict[str, Any]:
    return {
        "model": model,
        "messages": [{"role": "user", "content": f"Write {name}, variant {seed}."}],
        "max_tokens": MAX_TOKENS,
        "temperature": 1.0,
        "seed": seed,
        "stream": stream,
        "return_token_ids": True,
        "structured_outputs": constraint,
        **({"logit_bias": END_OF_TEXT} if seed % 2 else {}),
    }


async def completion(client: httpx.AsyncClient, url: str, body: dict[str, Any]) -> tuple[list[int], str, str]:
    """(token ids, text, finish reason) of one chat completion, streamed or not."""
    if not body["stream"]:
        response = await client.post(f"{url}/v1/chat/completions", json=body)
        assert response.status_code == 200, response.text
        choice = response.json()["choices"][0]
        return choice["token_ids"], choice["message"]["content"], choice["finish_reason"]
    ids: list[int] = []
    text, finish = "", ""
    async with client.stream("POST", f"{url}/v1/chat/completions", json=body) as response:
        assert response.status_code == 200
        async for line in response.aiter_lines():
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            for choice in json.loads(line[6:]).get("choices", []):
                ids += choice.get("token_ids") or []
                text += choice["delta"].get("content") or ""
                finish = choice.get("finish_reason") or finish
    return ids, text, finish


async def run_all(url: str, bodies: list[dict[str, Any]], concurrency: int) -> list[tuple[list[int], str, str]]:
    limit = asyncio.Semaphore(concurrency)
    async with httpx.AsyncClient(timeout=600) as client:

        async def one(body: dict[str, Any]) -> tuple[list[int], str, str]:
            async with limit:
                return await completion(client, url, body)

        return await asyncio.gather(*(one(body) for body in bodies))


def test_the_stack_runs_the_plugin_and_the_comparison_stack_does_not(stack: Stack, stack_plugin_off: Stack) -> None:
    assert "maze engine plugin: on for vLLM 0.32.0 (the pinned release)" in stack.log_path.read_text()
    assert "compiling 8 matchers of each library grammar" in stack.log_path.read_text()
    off_log = stack_plugin_off.log_path.read_text()
    assert "maze engine plugin: off (MAZE_ENGINE_PLUGIN=0)" in off_log
    assert "maze engine plugin: on" not in off_log


@pytest.mark.parametrize("stream", [False, True], ids=["json", "sse"])
@pytest.mark.parametrize("concurrency", [1, 16])
def test_same_seeds_give_the_same_tokens_with_the_plugin_on_and_off(
    stack: Stack, stack_plugin_off: Stack, stream: bool, concurrency: int
) -> None:
    seeds = range(2) if concurrency == 1 else range(2, 4)
    bodies = [
        request_body(stack.model, name, constraint, seed, stream=stream)
        for name, constraint in constraints().items()
        for seed in seeds
    ]
    on = asyncio.run(run_all(stack.upstream_url, bodies, concurrency))
    off = asyncio.run(run_all(stack_plugin_off.upstream_url, bodies, concurrency))
    names = [f"{body['messages'][0]['content']}" for body in bodies]
    for name, with_plugin, without in zip(names, on, off, strict=True):
        assert with_plugin[0], f"{name}: no tokens came back"
        assert with_plugin == without, f"{name}: the plugin changed the output"
    # The end-of-text push must have finished some generations, so steps held finished grammars too.
    assert any(finish == "stop" for _, _, finish in on)


def test_an_invalid_grammar_is_refused_the_same_way(stack: Stack, stack_plugin_off: Stack) -> None:
    body = request_body(stack.model, "broken", {"grammar": "start: undefined_rule\n"}, 0, stream=False)
    answers = [
        httpx.post(f"{s.upstream_url}/v1/chat/completions", json=body, timeout=120) for s in (stack, stack_plugin_off)
    ]
    assert [a.status_code for a in answers] == [400, 400]
    assert answers[0].json()["error"]["message"] == answers[1].json()["error"]["message"]
    assert "undefined_rule" in answers[0].json()["error"]["message"]
