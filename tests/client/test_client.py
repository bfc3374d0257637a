"""MazeClient and AsyncMazeClient against the real stack: every output is checked against its grammar."""

from __future__ import annotations

import asyncio
import json
import time

import openai
import pytest

import grammars
from app.ports import free_port
from client import AsyncMazeClient, MazeClient, NotReadyError, TextStream

from ..conftest import Stack
from ..e2e.grammar_match import ARITH, assert_obeys, json_schema_grammar
from .conftest import POINT_SCHEMA, SUM

PROMPT = "Write an arithmetic expression."


def test_generate_obeys_a_lark_grammar_and_finds_the_model(maze: MazeClient, stack: Stack) -> None:
    with MazeClient(stack.base_url, stack.api_key, max_retries=0) as fresh:
        for _ in range(2):
            text = fresh.generate(PROMPT, grammar=SUM, max_tokens=32, temperature=0.8)
            assert isinstance(text, str)
            assert_obeys(SUM, text, "stop")  # SUM always ends within 32 tokens: the whole grammar must hold
        assert fresh.model == stack.model  # asked /v1/models once, then cached


def test_streamed_lark_grammar(maze: MazeClient) -> None:
    stream = maze.generate(PROMPT, grammar=ARITH, max_tokens=24, stream=True)
    assert isinstance(stream, TextStream)
    text = "".join(stream)
    assert_obeys(ARITH, text, stream.finish_reason)
    assert stream.usage is not None and 0 < stream.usage.completion_tokens <= 24  # the server's count, from the stream


def test_generate_with_a_library_language_streamed(maze: MazeClient) -> None:
    stream = maze.generate("Write a function that reverses a list.", language="python", max_tokens=32, stream=True)
    assert isinstance(stream, TextStream)
    with stream:
        deltas = list(stream)
    assert len(deltas) > 1, "expected the text to arrive in several deltas"
    assert stream.finish_reason in {"stop", "length"}
    assert_obeys(grammars.load("python"), "".join(deltas), stream.finish_reason)


def test_generate_with_a_json_schema(maze: MazeClient) -> None:
    stream = maze.generate("A point.", json_schema=POINT_SCHEMA, system="Answer in JSON.", max_tokens=32, stream=True)
    assert isinstance(stream, TextStream)
    text = "".join(stream)
    assert_obeys(json_schema_grammar(POINT_SCHEMA), text, stream.finish_reason)
    if stream.finish_reason == "stop":
        assert set(json.loads(text)) == {"x", "y"}


def test_choice_and_regex_constraints(maze: MazeClient) -> None:
    assert maze.generate("Pick one.", choice=["red", "green", "blue"], max_tokens=8) in {"red", "green", "blue"}
    text = maze.generate("Digits.", regex="[0-9]{1,6}", max_tokens=8)
    assert isinstance(text, str) and text.isdigit() and len(text) <= 6


def test_async_client_generates_and_streams(stack: Stack) -> None:
    async def run() -> tuple[str, str, str | None]:
        async with AsyncMazeClient(stack.base_url, stack.api_key, max_retries=0, timeout=120) as maze:
            await maze.wait_for_ready(timeout=30)
            text, stream = await asyncio.gather(
                maze.generate(PROMPT, grammar=SUM, max_tokens=32),
                maze.generate("Reverse a list.", language="python", max_tokens=32, stream=True),
            )
            assert isinstance(text, str) and not isinstance(stream, str)
            streamed = "".join([delta async for delta in stream])
            return text, streamed, stream.finish_reason

    text, streamed, finish = asyncio.run(run())
    assert_obeys(SUM, text, "stop")
    assert_obeys(grammars.load("python"), streamed, finish)


def test_a_wrong_key_is_the_sdks_authentication_error(stack: Stack) -> None:
    with MazeClient(stack.base_url, "sk-wrong", max_retries=0) as maze:
        with pytest.raises(openai.AuthenticationError):
            maze.generate(PROMPT, grammar=ARITH, max_tokens=8, model=stack.model)
        with pytest.raises(openai.AuthenticationError):
            maze.generate(PROMPT, grammar=ARITH, max_tokens=8)  # while asking /v1/models for the default model


def test_wait_for_ready_returns_on_a_ready_stack(maze: MazeClient) -> None:
    calls: list[tuple[float, int | None]] = []
    maze.wait_for_ready(timeout=10, progress=lambda elapsed, status: calls.append((elapsed, status)))
    assert calls == []


def test_wait_for_ready_refuses_a_wrong_key_at_once(stack: Stack) -> None:
    started = time.monotonic()
    with MazeClient(stack.base_url, "sk-wrong") as maze, pytest.raises(openai.AuthenticationError, match="401"):
        maze.wait_for_ready(timeout=60)
    assert time.monotonic() - started < 5


def test_wait_for_ready_reports_progress_then_times_out() -> None:
    calls: list[tuple[float, int | None]] = []
    maze = MazeClient(f"http://127.0.0.1:{free_port()}", "sk-x")
    with pytest.raises(TimeoutError, match="unreachable") as raised:
        maze.wait_for_ready(timeout=1, interval=0.2, progress=lambda elapsed, status: calls.append((elapsed, status)))
    assert isinstance(raised.value, NotReadyError) and raised.value.last_status is None
    assert len(calls) >= 3 and all(status is None for _, status in calls)
    assert calls[-1][0] >= 1
