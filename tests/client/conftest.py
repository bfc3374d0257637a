"""A ``MazeClient`` on the session's real stack (gateway + CPU vLLM), and the grammars the client tests share."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from client import MazeClient

from ..conftest import Stack

#: At most 17 characters, so it always ends within 32 tokens: its outputs must be whole sentences.
SUM = r"""
start: "(" NUM ("+" NUM){0,3} ")"
NUM: /[1-9][0-9]{0,2}/
"""
POINT_SCHEMA = {
    "type": "object",
    "properties": {"x": {"type": "integer"}, "y": {"type": "integer"}},
    "required": ["x", "y"],
    "additionalProperties": False,
}


@pytest.fixture(scope="session")
def maze(stack: Stack) -> Iterator[MazeClient]:
    with MazeClient(stack.base_url, stack.api_key, max_retries=0, timeout=120) as client:
        yield client
