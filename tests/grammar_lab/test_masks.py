"""grammar_lab.masks: generation replays, lexeme bounds and dead ends, from llguidance's token masks."""

from __future__ import annotations

import pytest

from grammar_lab import masks
from grammars.validation import check_text

TINY = 'start: "a" B\nB: /b+/\n'


def test_mask_replay_agrees_with_feeding() -> None:
    """The generation replay rejects where feeding does, and requires EOS to be allowed at the end."""
    verdict, times = masks.replay_with_masks(TINY, "abb")
    assert verdict.accepted and len(times) == 4  # three bytes, then the end of text
    verdict, _ = masks.replay_with_masks(TINY, "abxb")
    assert (verdict.accepted, verdict.offset) == (False, 2)
    assert verdict.offset == check_text(TINY, "abxb").offset
    verdict, _ = masks.replay_with_masks(TINY, "a")
    assert (verdict.accepted, verdict.offset, verdict.message) == (False, 1, "end of text not allowed here")


BOUNDED = 'start: WORD "!"\nWORD: /a{1,3}/\n'


def test_tokens_past_the_end_is_empty_at_a_lexemes_limit() -> None:
    assert masks.tokens_past_the_end(BOUNDED, "aaa", (b"!",)) == []
    assert masks.tokens_past_the_end(BOUNDED, "aa", (b"!",)) == [b"a"]


def test_tokens_past_the_end_counts_eos_only_when_listed() -> None:
    assert masks.tokens_past_the_end(BOUNDED, "aaa!", (b"\n",)) == [b""]
    assert masks.tokens_past_the_end(BOUNDED, "aaa!", (b"",)) == []


def test_tokens_past_the_end_refuses_an_empty_mask(monkeypatch: pytest.MonkeyPatch) -> None:
    """A matcher in an error state allows nothing; that must not pass for a proven bound."""
    monkeypatch.setattr(masks, "allowed_next", lambda *_args: [])
    with pytest.raises(ValueError, match="allows nothing"):
        masks.tokens_past_the_end(BOUNDED, "aaa", (b"!",))


def test_dead_ends_are_tokens_the_mask_allows_that_lead_nowhere() -> None:
    """`b` matches a lexeme the parser takes, but nothing can follow it: the mask cannot see that."""
    dead_end = 'start: "a" (B NEVER)? "!"\nB: "b"\nNEVER: /x/ & /y/\n'
    assert masks.dead_ends_after(dead_end, "a", lambda _token: True) == [b"b"]
    assert masks.dead_ends_after(dead_end, "a", lambda token: token != b"b") == []
    assert masks.dead_ends_after('start: "a" "b"? "!"\n', "a", lambda _token: True) == []


def test_dead_ends_refuse_a_prefix_outside_the_grammar() -> None:
    with pytest.raises(ValueError, match="does not take the prefix"):
        masks.dead_ends_after(TINY, "x", lambda _token: True)


def test_dead_ends_along_a_text_are_located() -> None:
    dead_end = 'start: ("a" (B NEVER)? "!")*\nB: "-"\nNEVER: /x/ & /y/\n'
    assert masks.dead_ends_along(dead_end, "a!a!a!", 2) == [(1, b"-"), (3, b"-"), (5, b"-")]
    assert masks.dead_ends_along('start: ("a" "-"? "!")*\n', "a!a!a!", 2) == []
