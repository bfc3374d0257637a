"""grammar_lab.check: the corpus filters and the accept-rate command line."""

from __future__ import annotations

from pathlib import Path

import pytest

from grammar_lab import check


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


def test_cli_dead_ends_along_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "a.json").write_text('{"k": [' + ", ".join(["1"] * 400) + "]}", encoding="utf-8")
    assert check.main(["--language", "json", "--tokenizer", "byte", "--dead-ends", "400", str(tmp_path)]) == 0
    assert "dead ends: 0 at 3 probed places (every 400th token)" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        check.main(["--language", "json", "--dead-ends", "-1", str(tmp_path)])
    assert "--dead-ends takes a positive N" in capsys.readouterr().err
