"""The stock openai SDK, pointed at the gateway, in front of the real CPU vLLM."""

from __future__ import annotations

import json

import httpx
import openai
import pytest

import grammars

from ..conftest import Stack
from .grammar_match import ARITH, assert_obeys, json_schema_grammar

MESSAGES = [{"role": "user", "content": "Write an arithmetic expression."}]


def test_chat_completion_obeys_lark_grammar(openai_client: openai.OpenAI, stack: Stack) -> None:
    for seed in range(3):
        completion = openai_client.chat.completions.create(
            model=stack.model, messages=MESSAGES, max_tokens=40, seed=seed,
            extra_body={"structured_outputs": {"grammar": ARITH}},
        )  # fmt: skip
        choice = completion.choices[0]
        assert choice.message.content
        assert_obeys(ARITH, choice.message.content, choice.finish_reason)


def test_streamed_chat_completion_obeys_grammar(openai_client: openai.OpenAI, stack: Stack) -> None:
    stream = openai_client.chat.completions.create(
        model=stack.model, messages=MESSAGES, max_tokens=40, stream=True, seed=1,
        extra_body={"structured_outputs": {"grammar": ARITH}},
    )  # fmt: skip
    parts, finish = [], None
    for chunk in stream:
        if chunk.choices:
            parts.append(chunk.choices[0].delta.content or "")
            finish = chunk.choices[0].finish_reason or finish
    assert len([p for p in parts if p]) > 1, "expected the text to arrive in several chunks"
    assert_obeys(ARITH, "".join(parts), finish)


def test_text_completion_obeys_grammar(openai_client: openai.OpenAI, stack: Stack) -> None:
    completion = openai_client.completions.create(
        model=stack.model, prompt="1 + ", max_tokens=30, seed=2, extra_body={"structured_outputs": {"grammar": ARITH}}
    )
    choice = completion.choices[0]
    assert_obeys(ARITH, choice.text, choice.finish_reason)


def test_models_lists_the_served_model(openai_client: openai.OpenAI, stack: Stack) -> None:
    assert [m.id for m in openai_client.models.list()] == [stack.model]


@pytest.mark.parametrize("field", ["guided_grammar", "guided_choice"])
def test_legacy_field_comes_back_constrained(openai_client: openai.OpenAI, stack: Stack, field: str) -> None:
    """vLLM alone ignores these fields; through the gateway they must constrain."""
    value = 'start: "yes" | "no"' if field == "guided_grammar" else ["yes", "no"]
    for seed in range(3):
        completion = openai_client.chat.completions.create(
            model=stack.model, messages=MESSAGES, max_tokens=10, seed=seed, extra_body={field: value}
        )
        assert completion.choices[0].message.content in {"yes", "no"}


@pytest.mark.parametrize("name", grammars.names())
def test_every_library_grammar_constrains_output(openai_client: openai.OpenAI, stack: Stack, name: str) -> None:
    completion = openai_client.chat.completions.create(
        model=stack.model, messages=[{"role": "user", "content": f"Write {name}."}], max_tokens=48, seed=3,
        extra_body={"language": name},
    )  # fmt: skip
    choice = completion.choices[0]
    assert_obeys(grammars.load(name), choice.message.content or "", choice.finish_reason)


def test_json_schema_response_format_is_enforced(openai_client: openai.OpenAI, stack: Stack) -> None:
    schema = {
        "type": "object",
        "properties": {"name": {"type": "string", "maxLength": 12}, "age": {"type": "integer"}},
        "required": ["name", "age"],
        "additionalProperties": False,
    }
    completion = openai_client.chat.completions.create(
        model=stack.model, messages=MESSAGES, max_tokens=80, seed=4,
        response_format={"type": "json_schema", "json_schema": {"name": "person", "schema": schema}},
    )  # fmt: skip
    choice = completion.choices[0]
    assert_obeys(json_schema_grammar(schema), choice.message.content or "", choice.finish_reason)
    if choice.finish_reason == "stop":
        data = json.loads(choice.message.content or "")
        assert set(data) == {"name", "age"} and isinstance(data["age"], int)


@pytest.mark.parametrize("stream", [False, True])
def test_invalid_grammar_is_400_with_llguidance_message(
    openai_client: openai.OpenAI, stack: Stack, stream: bool
) -> None:
    bad = 'start: "a" | missing_rule'
    with pytest.raises(openai.BadRequestError) as info:
        openai_client.chat.completions.create(
            model=stack.model, messages=MESSAGES, max_tokens=5, stream=stream,
            extra_body={"structured_outputs": {"grammar": bad}},
        )  # fmt: skip
    ours = info.value.body["message"]  # type: ignore[index]
    assert 'unknown name: "missing_rule"' in ours
    # vLLM's own (non-streaming) verdict carries the same llguidance message.
    direct = httpx.post(
        f"{stack.upstream_url}/v1/chat/completions",
        json={
            "model": stack.model,
            "messages": MESSAGES,
            "max_tokens": 5,
            "structured_outputs": {"grammar": bad},
        },
        timeout=60,
    )
    assert direct.status_code == 400
    assert ours.removeprefix("Grammar error: ").strip() in direct.json()["error"]["message"]


def test_two_constraints_are_refused(openai_client: openai.OpenAI, stack: Stack) -> None:
    with pytest.raises(openai.BadRequestError, match="one constraint"):
        openai_client.chat.completions.create(
            model=stack.model, messages=MESSAGES, max_tokens=5,
            extra_body={"language": "python", "guided_regex": "[a-z]+"},
        )  # fmt: skip


def test_unknown_model_is_passed_through_as_404(openai_client: openai.OpenAI) -> None:
    with pytest.raises(openai.NotFoundError):
        openai_client.chat.completions.create(model="no-such-model", messages=MESSAGES, max_tokens=5)


@pytest.mark.parametrize("key", ["", "sk-wrong"])
def test_missing_or_wrong_key_is_401(stack: Stack, key: str) -> None:
    client = openai.OpenAI(base_url=f"{stack.base_url}/v1", api_key=key or "unused", max_retries=0)
    if not key:
        client = client.with_options(default_headers={"Authorization": ""})
    with pytest.raises(openai.AuthenticationError):
        client.models.list()
