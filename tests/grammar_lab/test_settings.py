"""grammar_lab.settings: MAZE_CORPUS_DIR read from the environment, every folder under it."""

from __future__ import annotations

from pathlib import Path

import pytest

from grammar_lab.settings import LabSettings, settings


def test_corpus_dir_comes_from_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MAZE_CORPUS_DIR", str(tmp_path))
    lab = LabSettings()
    assert lab.corpus_dir == tmp_path
    assert (lab.npm_dir, lab.pypi_dir, lab.verdicts_dir) == (tmp_path / "npm", tmp_path / "pypi", tmp_path / "verdicts")


def test_default_is_a_cache_folder_in_home(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MAZE_CORPUS_DIR", raising=False)
    assert LabSettings().corpus_dir == Path.home() / ".cache" / "maze-inference" / "corpus"


def test_the_environment_is_read_once_per_process() -> None:
    assert settings() is settings()
