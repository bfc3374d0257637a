"""grammar_lab.corpus: real files per project, parser-filtered, interleaved, and the listing CLI."""

from __future__ import annotations

from pathlib import Path

import pytest

from grammar_lab import corpus
from grammar_lab.settings import LabSettings


def test_python_corpus_spans_several_projects_and_every_file_is_valid() -> None:
    projects = corpus.candidates("python")
    assert "cpython" in projects and len(projects) >= 3
    first = corpus.files("python", limit=len(projects))
    # Interleaved: a limit as large as the project count takes files from (nearly) every project.
    assert len({next(n for n, ps in projects.items() if p in ps) for p in first}) >= len(projects) - 2
    for path in first:
        assert corpus.MIN_SIZE <= path.stat().st_size <= corpus.MAX_SIZE
        assert corpus.uses_four_space_indentation(path.read_text(encoding="utf-8"))


@pytest.mark.parametrize("language", sorted(corpus.SOURCES))
def test_each_language_has_at_least_100_files_from_several_projects(language: str) -> None:
    paths = corpus.files(language, limit=100)
    assert len(paths) == 100
    owner = {path: name for name, group in corpus.candidates(language).items() for path in group}
    assert len({owner[path] for path in paths}) >= 3


@pytest.mark.parametrize(
    ("language", "suffix", "good_text", "bad_text"),
    [
        ("python", ".py", "def f(x):\n    return x\n" * 60, "print 'x'\n" * 200),  # the parser rejects it
        ("typescript", ".ts", "export const x = 1\n" * 80, '/// <reference lib="es2015.core" />\n' * 40),  # no code
    ],
    ids=["parser-rejects", "comments-only"],
)
def test_files_the_parser_or_a_convention_rejects_are_left_out(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, language: str, suffix: str, good_text: str, bad_text: str
) -> None:
    good, bad = tmp_path / "a" / f"good{suffix}", tmp_path / "b" / f"bad{suffix}"
    good.parent.mkdir()
    bad.parent.mkdir()
    good.write_text(good_text, encoding="utf-8")
    bad.write_text(bad_text, encoding="utf-8")
    source = corpus.Source(language, lambda: {"a": [good.parent], "b": [bad.parent]}, (suffix,), "n/a")
    monkeypatch.setitem(corpus.SOURCES, language, source)
    monkeypatch.setattr(corpus, "settings", lambda: LabSettings(corpus_dir=tmp_path / "cache"))
    assert corpus.files(language) == [good]
    assert (tmp_path / "cache" / "verdicts" / f"{language}.json").is_file()


def test_missing_corpus_says_how_to_install_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(corpus.SOURCES, "go", corpus.Source("go", dict, (".go",), "apt-get install golang-go"))
    with pytest.raises(corpus.CorpusUnavailableError, match="apt-get install golang-go"):
        corpus.files("go")


def test_cli_lists_projects_and_refuses_unknown_languages(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("one", "two"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "data.json").write_text("[" + ", ".join(["1"] * 600) + "]", encoding="utf-8")
    projects = {name: [tmp_path / name] for name in ("one", "two")}
    monkeypatch.setitem(corpus.SOURCES, "json", corpus.Source("json", lambda: projects, (".json",), "n/a"))
    monkeypatch.setattr(corpus, "settings", lambda: LabSettings(corpus_dir=tmp_path / "cache"))
    assert corpus.main(["json"]) == 0
    assert capsys.readouterr().out == "json: 2 files from 2 projects\n  one: 1\n  two: 1\n"
    assert corpus.main(["cobol"]) == 2
    assert "unknown language 'cobol'" in capsys.readouterr().err


def test_files_that_hold_only_comments_are_not_corpus_programs() -> None:
    """Every code grammar wants one item, so a licence-only file measures nothing (issue 15)."""
    python = corpus.CONVENTIONS["python"]
    assert python('"""Only a docstring."""\n') and python("import os\n")
    assert not python("# Licensed under ...\n# more\n") and not python("")
    for language in ("go", "rust", "typescript", "zig"):
        keeps = corpus.CONVENTIONS[language]
        assert keeps("// c\nconst x = 1;\n") and keeps("/* c */ let s = '// not a comment'\n")
        assert not keeps('// Licence\n/* block\n   comment */\n/// <reference lib="es2015" />\n')
    rust = corpus.CONVENTIONS["rust"]
    assert not rust('//! Docs\n#![doc = include_str!("../a.md")]\n#![allow(x, y[0])]\n')
    assert rust("#![allow(dead_code)]\nfn main() {}\n")
