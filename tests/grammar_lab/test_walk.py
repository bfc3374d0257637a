"""grammar_lab.walk and grammar_lab.sound: random walks stay inside the grammar and are judged by parsers."""

from __future__ import annotations

import json
import re

import pytest

import grammars
from grammar_lab import sound, walk
from grammar_lab.masks import operator_like
from grammars.tokenizers import byte_tokenizer
from grammars.validation import accepts

ARITH = 'start: expr\nexpr: NUM | "(" expr OP expr ")"\nOP: /[-+*]/\nNUM: /[0-9]{1,3}/\n'
ARITH_RE = re.compile(r"^(?:[0-9]{1,3}|\(.*\))$")


def test_walks_finish_and_every_text_is_accepted_by_the_grammar() -> None:
    report = walk.walk(ARITH, 40, seed=1, tokenizer=byte_tokenizer())
    assert len(report.texts) == 40
    for text in report.texts:
        assert accepts(ARITH, text) and ARITH_RE.match(text), text
    assert len(set(report.texts)) > 10  # random, not one text forty times


def test_min_tokens_keeps_walks_going_past_the_first_accepting_state() -> None:
    texts = walk.sample('start: "a"+\n', 20, seed=2, tokenizer=byte_tokenizer(), min_tokens=5)
    assert len(texts) == 20 and all(len(text) >= 5 for text in texts)
    assert min(len(t) for t in walk.sample('start: "a"+\n', 20, seed=2, tokenizer=byte_tokenizer())) < 5


def test_walks_are_reproducible_from_the_seed() -> None:
    first = walk.sample(ARITH, 10, seed=7, tokenizer=byte_tokenizer())
    assert first == walk.sample(ARITH, 10, seed=7, tokenizer=byte_tokenizer())
    assert first != walk.sample(ARITH, 10, seed=8, tokenizer=byte_tokenizer())


def test_walks_that_cannot_finish_in_budget_are_counted_not_returned() -> None:
    report = walk.walk('start: "a"* "b"\n', 5, seed=0, tokenizer=byte_tokenizer(), max_tokens=3, short_bias=0)
    assert report.unfinished + len(report.texts) == report.attempts
    assert all(text.endswith("b") and len(text) <= 3 for text in report.texts)


def test_qwen_tokens_walk_through_the_json_grammar() -> None:
    texts = walk.sample(grammars.load("json"), 10, seed=3)
    assert len(texts) == 10

    for text in texts:
        json.loads(text)


def test_sound_cli_reports_rate_and_fails_on_an_unsound_grammar(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert sound.main(["--language", "json", "-n", "20", "--tokenizer", "byte"]) == 0
    assert "json: 20/20 finished walks parse (100.0%)" in capsys.readouterr().out
    # A "JSON" grammar that also allows a trailing comma: the real parser catches it.
    loose = 'start: "[" NUM ("," NUM)* ","? "]"\nNUM: /[0-9]/\n'
    monkeypatch.setattr(grammars, "load", lambda _name: loose)
    assert sound.main(["--language", "json", "-n", "30", "--tokenizer", "byte", "--show", "1"]) == 1
    out = capsys.readouterr().out
    assert "rejected by the json parser" in out and ",]" in out


DEAD_END = 'start: "a" (B NEVER)? "!"\nB: "b"\nNEVER: /x/ & /y/\n'


def test_dead_end_sweep_finds_a_token_that_nothing_can_follow() -> None:
    found = walk.dead_end_sweep(DEAD_END, 5, tokenizer=byte_tokenizer(), keep=lambda _token: True)
    assert found and {(dead.prefix, dead.token) for dead in found} == {("a", b"b")}
    assert walk.dead_end_sweep('start: "a" "b"? "!"\n', 5, tokenizer=byte_tokenizer(), keep=bool) == []


def test_operator_like_tokens_are_short_ascii_punctuation() -> None:
    assert [operator_like(t) for t in [b"--", b" ++", b");\n", b"x", b"a+", b"\xe2\x80\x94", b"", b"====="]] == [
        True,
        True,
        True,
        False,
        False,
        False,
        False,
        False,
    ]


def test_sound_cli_fails_on_a_dead_end(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(grammars, "load", lambda _name: DEAD_END.replace('B: "b"', 'B: "-"'))
    assert sound.main(["--language", "json", "-n", "0", "--tokenizer", "byte", "--dead-ends", "3"]) == 1
    out = capsys.readouterr().out
    assert "--- dead end: b'-' after ...'a'" in out and re.search(r"json: [123] dead ends at 3 random places", out)
    monkeypatch.setattr(grammars, "load", lambda _name: 'start: "a" "-"? "!"\n')
    assert sound.main(["--language", "json", "-n", "0", "--tokenizer", "byte", "--dead-ends", "3"]) == 0


@pytest.mark.parametrize("name", grammars.names())
def test_library_grammars_have_no_dead_ends_at_sampled_places(name: str) -> None:
    """At random places in every library grammar, no operator-like token the Qwen mask allows leads
    nowhere (TypeScript's `x--` then `--` once did; a sweep of 6 places found it every time)."""
    found = walk.dead_end_sweep(grammars.load(name), 8, seed=0)
    assert [(dead.prefix[-80:], dead.token) for dead in found] == []


def test_sound_cli_refuses_a_negative_dead_end_count(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        sound.main(["--language", "json", "-n", "0", "--dead-ends", "-3"])
    assert "--dead-ends takes a positive N" in capsys.readouterr().err
