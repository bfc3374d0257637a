"""LiteLLM's SDK against the real stack through its ``hosted_vllm/`` provider, plain and streamed.

Checked, not assumed: LiteLLM forwards ``extra_body`` fields, ``structured_outputs`` and ``language`` given
as plain keyword arguments, ``response_format``, and even the legacy ``guided_grammar`` (which the gateway
translates) to the gateway unchanged. A grammar that random weights would never satisfy proves the
constraint reached the engine.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from types import ModuleType
from typing import Any

import pytest

import grammars

from ..conftest import Stack
from ..e2e.grammar_match import assert_obeys, json_schema_grammar
from .conftest import SUM

EXACT = r"""
start: "maze-" /[0-9]{3}/ "!"
"""
COLOR = {
    "type": "object",
    "properties": {"color": {"enum": ["red", "green", "blue"]}},
    "required": ["color"],
    "additionalProperties": False,
}


@pytest.fixture(scope="module")
def litellm() -> Iterator[ModuleType]:
    with pytest.MonkeyPatch.context() as env:
        env.setenv("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # no price-list fetch from GitHub at import
        import litellm

        yield litellm


def complete(litellm: ModuleType, stack: Stack, **kwargs: Any) -> Any:
    options: dict[str, Any] = {"max_tokens": 32, "temperature": 0.8, "seed": 11, **kwargs}
    return litellm.completion(
        model=f"hosted_vllm/{stack.model}",
        api_base=f"{stack.base_url}/v1",
        api_key=stack.api_key,
        messages=[{"role": "user", "content": options.pop("prompt", "Add some numbers.")}],
        num_retries=0,
        timeout=120,
        **options,
    )


def test_completion_with_a_grammar_in_extra_body(litellm: ModuleType, stack: Stack) -> None:
    response = complete(litellm, stack, extra_body={"structured_outputs": {"grammar": SUM}})
    choice = response.choices[0]
    assert choice.finish_reason == "stop"
    assert_obeys(SUM, choice.message.content, choice.finish_reason)
    assert 0 < response.usage.completion_tokens <= 32


@pytest.mark.parametrize(
    "constraint",
    [
        {"extra_body": {"structured_outputs": {"grammar": EXACT}}},
        {"structured_outputs": {"grammar": EXACT}},  # a plain keyword: LiteLLM passes unknown ones on
        {"guided_grammar": EXACT},  # the legacy field: forwarded, then translated by the gateway
    ],
    ids=["extra_body", "keyword", "legacy-guided_grammar"],
)
def test_the_constraint_reaches_the_engine(litellm: ModuleType, stack: Stack, constraint: dict[str, Any]) -> None:
    choice = complete(litellm, stack, **constraint).choices[0]
    assert re.fullmatch(r"maze-[0-9]{3}!", choice.message.content), choice.message.content
    assert_obeys(EXACT, choice.message.content, choice.finish_reason)


def test_completion_with_a_library_language_as_a_keyword(litellm: ModuleType, stack: Stack) -> None:
    choice = complete(litellm, stack, language="python", prompt="Reverse a list.").choices[0]
    assert_obeys(grammars.load("python"), choice.message.content, choice.finish_reason)


def test_response_format_json_schema(litellm: ModuleType, stack: Stack) -> None:
    fmt = {"type": "json_schema", "json_schema": {"name": "color", "schema": COLOR}}
    choice = complete(litellm, stack, response_format=fmt, prompt="Pick a color.").choices[0]
    assert choice.finish_reason == "stop"
    assert_obeys(json_schema_grammar(COLOR), choice.message.content, "stop")
    assert json.loads(choice.message.content)["color"] in {"red", "green", "blue"}


def test_streaming_with_a_language_in_extra_body(litellm: ModuleType, stack: Stack) -> None:
    stream = complete(litellm, stack, stream=True, extra_body={"language": "python"}, prompt="Reverse a list.")
    deltas, finish = [], None
    for chunk in stream:
        if chunk.choices:
            deltas.append(chunk.choices[0].delta.content or "")
            finish = chunk.choices[0].finish_reason or finish
    assert len([delta for delta in deltas if delta]) > 1, "expected several deltas"
    assert finish in {"stop", "length"}
    assert_obeys(grammars.load("python"), "".join(deltas), finish)


def test_streaming_with_a_grammar_the_model_would_never_write(litellm: ModuleType, stack: Stack) -> None:
    stream = complete(litellm, stack, stream=True, extra_body={"structured_outputs": {"grammar": EXACT}})
    text = "".join(chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices)
    assert re.fullmatch(r"maze-[0-9]{3}!", text), text
