"""grammars.check: verdicts, failure positions, tokenizer choice, corpus filters and the CLI."""

from __future__ import annotations

from pathlib import Path

import pytest

import grammars
from grammars import check
from grammars.check import GrammarCompileError, Verdict, accepts, check_text

TINY = 'start: "a" B\nB: /b+/\n'


def test_accepted_text_has_no_position() -> None:
    assert check_text(TINY, "abbb") == Verdict(accepted=True)
    assert accepts(TINY, "ab")


def test_rejected_byte_is_located() -> None:
    verdict = check_text(TINY, "abxb")
    assert not verdict.accepted
    assert (verdict.offset, verdict.line, verdict.column) == (2, 1, 3)
    assert "doesn't satisfy the grammar" in verdict.message
    assert verdict.where() == "1:3"


def test_text_that_stops_early_is_rejected_at_its_end() -> None:
    verdict = check_text(TINY, "a")
    assert not verdict.accepted
    assert verdict.offset == 1
    assert "ended" in verdict.message


def test_columns_count_characters_on_the_failing_line() -> None:
    verdict = check_text('start: /[a-zé\\n]+/ "!"\n', "ab\néé?")
    assert (verdict.line, verdict.column) == (2, 3)


def test_matcher_reuse_does_not_leak_state() -> None:
    """The cached matcher is reset between texts, and a rejection does not poison it."""
    assert not accepts(TINY, "abxb")
    assert accepts(TINY, "ab")
    assert not accepts(TINY, "a")
    assert accepts(TINY, "abbbbbbbbbbb")


def test_broken_grammar_raises_with_llguidances_message() -> None:
    assert check.validate("start: NOPE\n") != ""
    with pytest.raises(GrammarCompileError):
        check_text("start: NOPE\n", "x")


def test_tokenizer_falls_back_to_bytes_when_the_folder_is_missing(tmp_path: Path) -> None:
    assert check.get_tokenizer(tmp_path / "absent") is check.byte_tokenizer()
    assert check.get_tokenizer("byte") is check.byte_tokenizer()
    assert check.get_tokenizer(None) is check.byte_tokenizer()


def test_default_tokenizer_folder_is_the_repo_copy() -> None:
    repo = Path(grammars.__file__).resolve().parents[1]
    assert repo / "app" / "tokenizer" / "qwen2.5-coder" == check.DEFAULT_TOKENIZER_DIR


def test_corpus_filter_for_python_wants_valid_four_space_code() -> None:
    assert check.uses_four_space_indentation("if x:\n    if y:\n        pass\n")
    assert not check.uses_four_space_indentation("if x:\n  pass\n")
    assert not check.uses_four_space_indentation("if x:\n\tpass\n")
    assert not check.uses_four_space_indentation("if x:\n        pass\n")
    assert not check.uses_four_space_indentation("def f(:\n")


def test_corpus_filter_for_json_is_strict() -> None:
    assert check.is_strict_json('{"a": [1, 2.5, null]}')
    assert not check.is_strict_json("[NaN]")
    assert not check.is_strict_json("[1,]")


def test_cli_reports_accept_rate_and_first_failure(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good = "def f(x):\n    return x\n" * 60
    (tmp_path / "good.py").write_text(good, encoding="utf-8")
    # Valid Python that python.lark rejects: a keyword after an expression needs whitespace after it.
    (tmp_path / "glued.py").write_text(good + "ok = 1 in(1, 2)\n", encoding="utf-8")
    # Skipped by the corpus filter: too small, and not valid Python (misses must be the grammar's).
    (tmp_path / "small.py").write_text("x = 1\n", encoding="utf-8")
    (tmp_path / "broken.py").write_text(good + "print 'x'\n", encoding="utf-8")
    assert check.main(["--language", "python", "--tokenizer", "byte", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "python: accepted 1/2 files (50.0%)" in out
    assert f"REJECTED {tmp_path / 'glued.py'} at 121:10" in out


def test_cli_limit_and_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for i in range(3):
        (tmp_path / f"{i}.json").write_text('{"k": [' + ", ".join(["1"] * 400) + "]}", encoding="utf-8")
    assert check.main(["--language", "json", "--tokenizer", "byte", "--limit", "2", str(tmp_path)]) == 0
    assert "json: accepted 2/2 files (100.0%)" in capsys.readouterr().out


def test_matcher_is_rebuilt_after_a_byte_budget(monkeypatch: pytest.MonkeyPatch) -> None:
    """Matchers are recycled (their lexer cache grows); verdicts must not depend on when that happens."""
    monkeypatch.setattr(check, "REBUILD_AFTER_BYTES", 5)
    verdicts = [accepts(TINY, text) for text in ["abbbbb", "abxb", "ab", "a", "abbbbbbbbb"]]
    assert verdicts == [True, False, True, False, True]


def test_mask_replay_agrees_with_feeding() -> None:
    """The generation replay rejects where feeding does, and requires EOS to be allowed at the end."""
    verdict, times = check.replay_with_masks(TINY, "abb")
    assert verdict.accepted and len(times) == 4  # three bytes, then the end of text
    verdict, _ = check.replay_with_masks(TINY, "abxb")
    assert (verdict.accepted, verdict.offset) == (False, 2)
    assert verdict.offset == check_text(TINY, "abxb").offset
    verdict, _ = check.replay_with_masks(TINY, "a")
    assert (verdict.accepted, verdict.offset, verdict.message) == (False, 1, "end of text not allowed here")


BOUNDED = 'start: WORD "!"\nWORD: /a{1,3}/\n'


def test_tokens_past_the_end_is_empty_at_a_lexemes_limit() -> None:
    assert check.tokens_past_the_end(BOUNDED, "aaa", (b"!",)) == []
    assert check.tokens_past_the_end(BOUNDED, "aa", (b"!",)) == [b"a"]


def test_tokens_past_the_end_counts_eos_only_when_listed() -> None:
    assert check.tokens_past_the_end(BOUNDED, "aaa!", (b"\n",)) == [b""]
    assert check.tokens_past_the_end(BOUNDED, "aaa!", (b"",)) == []


def test_tokens_past_the_end_refuses_an_empty_mask(monkeypatch: pytest.MonkeyPatch) -> None:
    """A matcher in an error state allows nothing; that must not pass for a proven bound."""
    monkeypatch.setattr(check, "allowed_next", lambda *_args: [])
    with pytest.raises(ValueError, match="allows nothing"):
        check.tokens_past_the_end(BOUNDED, "aaa", (b"!",))


def test_dead_ends_are_tokens_the_mask_allows_that_lead_nowhere() -> None:
    """`b` matches a lexeme the parser takes, but nothing can follow it: the mask cannot see that."""
    dead_end = 'start: "a" (B NEVER)? "!"\nB: "b"\nNEVER: /x/ & /y/\n'
    assert check.dead_ends_after(dead_end, "a", lambda _token: True) == [b"b"]
    assert check.dead_ends_after(dead_end, "a", lambda token: token != b"b") == []
    assert check.dead_ends_after('start: "a" "b"? "!"\n', "a", lambda _token: True) == []


def test_dead_ends_refuse_a_prefix_outside_the_grammar() -> None:
    with pytest.raises(ValueError, match="does not take the prefix"):
        check.dead_ends_after(TINY, "x", lambda _token: True)


def test_dead_ends_along_a_text_are_located() -> None:
    dead_end = 'start: ("a" (B NEVER)? "!")*\nB: "-"\nNEVER: /x/ & /y/\n'
    assert check.dead_ends_along(dead_end, "a!a!a!", 2) == [(1, b"-"), (3, b"-"), (5, b"-")]
    assert check.dead_ends_along('start: ("a" "-"? "!")*\n', "a!a!a!", 2) == []


def test_cli_dead_ends_along_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "a.json").write_text('{"k": [' + ", ".join(["1"] * 400) + "]}", encoding="utf-8")
    assert check.main(["--language", "json", "--tokenizer", "byte", "--dead-ends", "400", str(tmp_path)]) == 0
    assert "dead ends: 0 at 3 probed places (every 400th token)" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        check.main(["--language", "json", "--dead-ends", "-1", str(tmp_path)])
    assert "--dead-ends takes a positive N" in capsys.readouterr().err
