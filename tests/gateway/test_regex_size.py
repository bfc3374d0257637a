"""Regex size with bounded repetitions expanded: the measure that keeps engine-stalling regexes out."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

import grammars
from gateway.regex_size import largest_regex, regex_size

from .conftest import AUTH, FakeUpstream


@pytest.mark.parametrize(
    ("pattern", "size"),
    [
        ("abc", 3),
        ("a{1000}", 1000),
        ("(a{1000}){1000}", 1_000_000),
        ("(a{10}|b{20}){3}", 90),
        ("[ab]*a[ab]{30}", 32),
        ("x+y*", 2),
        ("(a{300,}){2,5}", 600),
        # Optional repetition is what a match may contain, not what it must: nearly free for llguidance.
        ("a{0,50000}", 1),
        ("((a{0,100}){0,100}){0,100}", 1),
        (r'"([^"\\]|\\.){0,5000}"', 5),
    ],
)
def test_regex_size_counts_what_every_match_must_contain(pattern: str, size: int) -> None:
    assert regex_size(pattern) == size


def test_a_regex_python_cannot_parse_is_left_to_llguidance() -> None:
    assert regex_size(r"\p{L}+") is None
    assert largest_regex("regex", r"\p{L}+") is None


def test_largest_regex_finds_lark_terminals_and_schema_patterns() -> None:
    grammar = "start: A B\nA: /x{5}/\nB: /(y{10}){10}/"
    assert largest_regex("grammar", grammar) == (100, "(y{10}){10}")
    schema = {"type": "object", "properties": {"id": {"type": "string", "pattern": "^[a-z]{64}$"}}}
    assert largest_regex("json", schema) == (66, "^[a-z]{64}$")


@pytest.mark.parametrize("name", grammars.names())
def test_library_grammars_are_within_the_default_limit(name: str) -> None:
    largest = largest_regex("grammar", grammars.load(name))
    assert largest is None or largest[0] <= 100_000


@pytest.mark.parametrize(
    "constraint",
    [
        {"structured_outputs": {"regex": "(a{1000}){1000}"}},
        {"structured_outputs": {"grammar": "start: /(a{1000}){1000}/"}},
        {"guided_json": {"type": "string", "pattern": "(a{1000}){1000}"}},
    ],
)
def test_oversized_regexes_are_refused_before_the_upstream(
    client: TestClient, upstream: FakeUpstream, constraint: dict
) -> None:
    response = client.post("/v1/completions", json={"prompt": "x", **constraint}, headers=AUTH)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["code"] == "grammar_too_complex" and "MAZE_MAX_REGEX_SIZE" in error["message"]
    assert not upstream.requests
