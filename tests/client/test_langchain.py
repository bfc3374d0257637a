"""LangChain's ``ChatOpenAI`` against the real stack: constraints in ``extra_body`` hold, invoked and streamed.

What LangChain needs (checked here, documented in the README): constraints go in ``extra_body`` (on the
model, per call, or with ``.bind``); ``model_kwargs`` cannot carry them; ``max_tokens`` is sent as
``max_completion_tokens``, which vLLM honours; ``with_structured_output(method="json_schema")`` sends
``response_format``, which the grammar engine enforces.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from langchain_openai import ChatOpenAI

import grammars

from ..conftest import Stack
from ..e2e.grammar_match import assert_obeys, json_schema_grammar
from .conftest import SUM

#: Random weights would never write this unconstrained.
EXACT = r"""
start: "maze-" /[0-9]{3}/ "!"
"""
COLOR = {
    "title": "Color",
    "type": "object",
    "properties": {"color": {"enum": ["red", "green", "blue"]}},
    "required": ["color"],
    "additionalProperties": False,
}


def chat(stack: Stack, **kwargs: Any) -> ChatOpenAI:
    options: dict[str, Any] = {"max_tokens": 32, "temperature": 0.8, "seed": 7, **kwargs}
    return ChatOpenAI(
        base_url=f"{stack.base_url}/v1", api_key=stack.api_key, model=stack.model, max_retries=0, timeout=120, **options
    )


def test_invoke_with_a_grammar_in_extra_body(stack: Stack) -> None:
    message = chat(stack, extra_body={"structured_outputs": {"grammar": SUM}}).invoke("Add some numbers.")
    finish = message.response_metadata["finish_reason"]
    assert finish == "stop"  # SUM always ends within 32 tokens
    assert_obeys(SUM, str(message.content), finish)
    assert message.usage_metadata is not None and 0 < message.usage_metadata["output_tokens"] <= 32


def test_invoke_with_a_grammar_the_model_would_never_write(stack: Stack) -> None:
    message = chat(stack).bind(extra_body={"structured_outputs": {"grammar": EXACT}}).invoke("Anything.")
    assert_obeys(EXACT, str(message.content), message.response_metadata["finish_reason"])
    assert str(message.content).startswith("maze-") and str(message.content).endswith("!")


def test_stream_with_a_library_language(stack: Stack) -> None:
    chunks = list(chat(stack).stream("Write a function that reverses a list.", extra_body={"language": "python"}))
    text = "".join(str(chunk.content) for chunk in chunks)
    finishes = [chunk.response_metadata.get("finish_reason") for chunk in chunks]
    finish = next(reason for reason in reversed(finishes) if reason)
    assert len([chunk for chunk in chunks if chunk.content]) > 1, "expected several content chunks"
    assert finish in {"stop", "length"}
    assert_obeys(grammars.load("python"), text, finish)


def test_stream_with_a_grammar_in_extra_body(stack: Stack) -> None:
    llm = chat(stack, extra_body={"structured_outputs": {"grammar": SUM}})
    chunks = list(llm.stream("Add some numbers."))
    text = "".join(str(chunk.content) for chunk in chunks)
    assert_obeys(SUM, text, "stop")


def test_with_structured_output_goes_through_response_format(stack: Stack) -> None:
    answer = chat(stack).with_structured_output(COLOR, method="json_schema").invoke("Pick a color.")
    assert isinstance(answer, dict) and answer["color"] in {"red", "green", "blue"}
    assert_obeys(json_schema_grammar(COLOR), json.dumps(answer, separators=(",", ":")), "stop")


def test_model_kwargs_cannot_carry_a_constraint(stack: Stack) -> None:
    """The openai SDK refuses unknown keyword arguments before any request: use extra_body instead."""
    with pytest.raises(TypeError, match="language"):
        chat(stack, model_kwargs={"language": "python"}).invoke("x")
