"""grammars.validation: verdicts, failure positions, compile errors, and the reused matcher."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from grammars import validation
from grammars.validation import GrammarCompileError, Verdict, accepts, check_text

REPO = Path(__file__).resolve().parents[2]
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
    assert validation.validate("start: NOPE\n") != ""
    with pytest.raises(GrammarCompileError):
        check_text("start: NOPE\n", "x")


def test_matcher_is_rebuilt_after_a_byte_budget(monkeypatch: pytest.MonkeyPatch) -> None:
    """Matchers are recycled (their lexer cache grows); verdicts must not depend on when that happens."""
    monkeypatch.setattr(validation, "REBUILD_AFTER_BYTES", 5)
    verdicts = [accepts(TINY, text) for text in ["abbbbb", "abxb", "ab", "a", "abbbbbbbbb"]]
    assert verdicts == [True, False, True, False, True]


def test_the_shipped_package_needs_llguidance_only() -> None:
    """grammars/ is what the wheel installs: loading and checking must not reach the dev tools or numpy."""
    script = (
        "import sys\n"
        "import grammars, grammars.validation\n"
        "assert grammars.validation.accepts(grammars.load('json'), '[1]')\n"
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'numpy', 'grammar_lab', 'transformers'}))\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True, cwd=REPO)
    assert result.stdout == "[]\n"
