"""The Maze provider against the real stack: Maze's request shape in, Maze's response shape out, grammars held."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import openai
import pytest

import grammars
from client import ConstraintError, GenerationRequest, GenerationResponse, MazeClient, MazeInferenceProvider

from ..conftest import Stack
from ..e2e.grammar_match import assert_obeys, json_schema_grammar
from .conftest import SUM


@pytest.fixture(scope="module")
def provider(maze: MazeClient) -> MazeInferenceProvider:
    return MazeInferenceProvider(maze)


@dataclass
class MazeShapedRequest:
    """Not our dataclass: any object with Maze's GenerationRequest attributes will do."""

    prompt: str
    grammar: str | None = None
    schema: dict[str, Any] | None = None
    max_tokens: int = 2048
    temperature: float = 0.7
    top_p: float = 0.95
    stop_sequences: list[str] = field(default_factory=list)
    metadata: dict[str, Any] = field(default_factory=dict)


def test_capabilities(provider: MazeInferenceProvider) -> None:
    assert provider.supports_grammar() is True
    assert provider.supports_json_schema() is True


def test_generate_with_a_language_from_metadata(provider: MazeInferenceProvider, stack: Stack) -> None:
    request = MazeShapedRequest("Add two numbers.", max_tokens=32, metadata={"language": "python"})
    response = provider.generate(request)
    assert isinstance(response, GenerationResponse)
    assert 0 < response.tokens_generated <= 32
    assert response.metadata["constraint"] == "language" and response.metadata["model"] == stack.model
    assert_obeys(grammars.load("python"), response.text, response.finish_reason)


def test_a_grammar_wins_over_the_language(provider: MazeInferenceProvider) -> None:
    request = GenerationRequest("Add numbers.", grammar=SUM, max_tokens=32, metadata={"language": "python"})
    response = provider.generate(request)
    assert response.finish_reason == "stop" and response.metadata["constraint"] == "grammar"
    assert_obeys(SUM, response.text, response.finish_reason)


def test_grammar_and_schema_together_are_refused(provider: MazeInferenceProvider) -> None:
    with pytest.raises(ConstraintError, match="grammar, json_schema"):
        provider.generate(GenerationRequest("x", grammar=SUM, schema={"type": "integer"}))


def test_an_invalid_grammar_is_the_sdks_bad_request(provider: MazeInferenceProvider) -> None:
    with pytest.raises(openai.BadRequestError):
        provider.generate(GenerationRequest("x", grammar="start: undefined_rule", max_tokens=8))


def test_batch_keeps_order_and_each_grammar(provider: MazeInferenceProvider) -> None:
    grammars_by_item: list[str] = []
    requests: list[Any] = []
    for i in range(6):
        if i % 3 == 2:  # every third item is a JSON schema that can only say which item it is
            item = {"item": {"const": i}}
            schema = {"type": "object", "properties": item, "required": ["item"], "additionalProperties": False}
            grammars_by_item.append(json_schema_grammar(schema))
            requests.append(GenerationRequest(f"Item {i}.", schema=json.dumps(schema), max_tokens=24))
        else:
            grammar = f'start: "item{i}:" /[a-z]{{1,8}}/'
            grammars_by_item.append(grammar)
            requests.append(MazeShapedRequest(f"Item {i}.", grammar=grammar, max_tokens=24, stop_sequences=["\n\n"]))
    responses = provider.generate_batch(requests, max_concurrency=6)
    assert len(responses) == 6
    for i, (grammar, response) in enumerate(zip(grammars_by_item, responses, strict=True)):
        assert_obeys(grammar, response.text, response.finish_reason)
        if i % 3 == 2:
            assert response.finish_reason == "stop" and json.loads(response.text) == {"item": i}, response.text
        else:
            assert response.text.startswith(f"item{i}:"), (i, response.text)
