"""grammars.corpus: real files per project, parser-filtered, interleaved, and the listing CLI."""

from __future__ import annotations

from pathlib import Path

import pytest

from grammars import corpus


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


def test_files_the_parser_rejects_are_left_out(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    good, bad = tmp_path / "a" / "good.py", tmp_path / "b" / "bad.py"
    good.parent.mkdir()
    bad.parent.mkdir()
    good.write_text("def f(x):\n    return x\n" * 60, encoding="utf-8")
    bad.write_text("print 'x'\n" * 200, encoding="utf-8")
    source = corpus.Source("python", lambda: {"a": [good.parent], "b": [bad.parent]}, (".py",), "n/a")
    monkeypatch.setitem(corpus.SOURCES, "python", source)
    monkeypatch.setattr(corpus, "CACHE_DIR", tmp_path / "cache")
    assert corpus.files("python") == [good]
    assert (tmp_path / "cache" / "verdicts" / "python.json").is_file()


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
    monkeypatch.setattr(corpus, "CACHE_DIR", tmp_path / "cache")
    assert corpus.main(["json"]) == 0
    assert capsys.readouterr().out == "json: 2 files from 2 projects\n  one: 1\n  two: 1\n"
    assert corpus.main(["cobol"]) == 2
    assert "unknown language 'cobol'" in capsys.readouterr().err
