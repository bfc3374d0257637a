"""The check every end-to-end test applies to an output (no server needed)."""

from __future__ import annotations

import pytest

import grammars

from .grammar_match import ARITH, assert_obeys


@pytest.mark.parametrize("finish_reason", ["stop", "length"])
def test_a_finished_output_obeys_the_grammar_a_cut_one_is_a_prefix(finish_reason: str) -> None:
    assert_obeys(ARITH, "1+2*(3", "length")
    assert_obeys(ARITH, "1+2*(3)", finish_reason)
    with pytest.raises(AssertionError, match="rejected"):
        assert_obeys(ARITH, "1+2*(3", "stop")


@pytest.mark.parametrize("name", grammars.names())
@pytest.mark.parametrize("text", ["", " \n"])
def test_an_empty_stopped_output_fails(name: str, text: str) -> None:
    with pytest.raises(AssertionError, match="no text"):
        assert_obeys(grammars.load(name), text, "stop")


def test_an_empty_stopped_output_fails_even_where_the_grammar_allows_it() -> None:
    with pytest.raises(AssertionError, match="no text"):
        assert_obeys('start: "a"?\n', "", "stop")
