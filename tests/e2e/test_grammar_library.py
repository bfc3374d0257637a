"""Every library grammar, end to end: what vLLM returns for ``language=<name>`` is a real program.

A random model almost never chooses to stop, so on its own it only ever shows valid *prefixes*.
Raising the end-of-text tokens' logits (``logit_bias``) makes it stop soon after the grammar first
allows stopping (and a milder push on "\\n" closes identifiers and statements sooner, except in JSON
where a newline is only whitespace). A finished text ends in an accepting state chosen by vLLM's
own masking, so the language's real parser (gofmt, rustfmt, the TypeScript compiler, zig
ast-check, ast, json) must take it. Whether a given seed finishes within the token budget depends on
the random weights (a walk into a long comment or identifier does not), so the module requires
finished outputs overall rather than for every language.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import httpx
import pytest

import grammars
from grammar_lab import parsers
from tests.conftest import Stack
from tests.e2e.grammar_match import assert_obeys

#: <|im_end|> and <|endoftext|>: the tiny model's end-of-text tokens (Qwen2.5's ids).
END_OF_TEXT = {"151645": 8, "151643": 8}
NEWLINE = {"198": 4}
SEEDS = range(4)


@dataclass(frozen=True)
class Output:
    name: str
    seed: int
    text: str
    finish_reason: str


@pytest.fixture(scope="module")
def outputs(stack: Stack) -> list[Output]:
    """Every (grammar, seed) request at once, so vLLM batches them."""

    async def one(client: httpx.AsyncClient, name: str, seed: int) -> Output:
        language = grammars.get_info(name).language
        body = {
            "model": stack.model,
            "messages": [{"role": "user", "content": f"Write a small {language} program."}],
            "max_tokens": 256,
            "seed": seed,
            "temperature": 1.0,
            "logit_bias": END_OF_TEXT if language == "json" else {**END_OF_TEXT, **NEWLINE},
            "language": name,
        }
        response = await client.post(f"{stack.base_url}/v1/chat/completions", json=body, headers=stack.headers)
        assert response.status_code == 200, response.text
        choice = response.json()["choices"][0]
        return Output(name, seed, choice["message"]["content"] or "", choice["finish_reason"])

    async def all_of_them() -> list[Output]:
        async with httpx.AsyncClient(timeout=600) as client:
            return await asyncio.gather(*(one(client, name, seed) for name in grammars.names() for seed in SEEDS))

    return asyncio.run(all_of_them())


@pytest.mark.parametrize("name", grammars.names())
def test_outputs_obey_the_grammar_and_finished_ones_pass_the_real_parser(outputs: list[Output], name: str) -> None:
    mine = [output for output in outputs if output.name == name]
    assert len(mine) == len(SEEDS)
    for output in mine:
        assert_obeys(grammars.load(name), output.text, output.finish_reason)
    finished = [output.text for output in mine if output.finish_reason == "stop"]
    language = grammars.get_info(name).language
    for text, verdict in zip(finished, parsers.check(language, finished), strict=True):
        assert verdict is None, f"{language} parser rejected {text!r}: {verdict}"


def test_enough_outputs_finish_for_the_parser_check_to_mean_something(outputs: list[Output]) -> None:
    finished = {output.name for output in outputs if output.finish_reason == "stop"}
    assert len(finished) >= 2, f"only {sorted(finished)} produced a finished output"
