"""grammar_lab.toolchains: what is missing, and a fetch that cannot install says so in one line, installing nothing."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from grammar_lab import corpus, toolchains
from grammar_lab.settings import LabSettings


@pytest.fixture
def nothing_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any process toolchains would start (dpkg, apt-get, npm, pip) fails the test."""

    def refuse(argv: list[str], **_kwargs: object) -> subprocess.CompletedProcess[str]:
        raise AssertionError(f"ran {argv}")

    monkeypatch.setattr(toolchains.subprocess, "run", refuse)


@pytest.fixture
def bare_machine(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, nothing_runs: None) -> None:
    """No apt-get, dpkg, npm, node or rustfmt, not root, and an empty corpus folder."""
    monkeypatch.setattr(toolchains.shutil, "which", lambda _name: None)
    monkeypatch.setattr(toolchains.os, "geteuid", lambda: 1000)
    monkeypatch.setattr(toolchains, "rustfmt", lambda: None)
    monkeypatch.setattr(toolchains, "settings", lambda: LabSettings(corpus_dir=tmp_path / "corpus"))


@pytest.mark.usefixtures("bare_machine")
def test_fetch_without_apt_or_npm_fails_with_one_line_naming_what_is_missing(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert corpus.main(["fetch"]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.count("\n") == 1 and captured.err.startswith("error: ")
    for named in ("apt-get", "golang-go", "rustfmt", "librust-serde-dev", "npm", "README"):
        assert named in captured.err
    assert "Traceback" not in captured.err


@pytest.mark.usefixtures("nothing_runs")
def test_fetch_as_a_user_names_the_apt_get_command_to_run_as_root(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(toolchains.shutil, "which", lambda name: f"/usr/bin/{name}")
    monkeypatch.setattr(toolchains.os, "geteuid", lambda: 1000)
    monkeypatch.setattr(toolchains, "_debian_missing", lambda packages: packages[:1])
    assert corpus.main(["fetch", "go"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "not root, so cannot run: apt-get install -y golang-go." in err


@pytest.mark.usefixtures("bare_machine")
def test_languages_that_need_nothing_fetch_nothing() -> None:
    assert corpus.main(["fetch", "python", "json"]) == 0


def test_rustfmt_is_installed_only_where_none_is_found(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(toolchains, "_debian_missing", lambda packages: packages)
    monkeypatch.setattr(toolchains, "rustfmt", lambda: None)
    assert toolchains.plan(["rust"]).apt == (*toolchains.RUST_APT, "rustfmt-web")
    monkeypatch.setattr(toolchains, "rustfmt", lambda: Path("/root/.cargo/bin/rustfmt"))  # rustup's counts
    assert toolchains.plan(["rust"]).apt == toolchains.RUST_APT


def test_node_is_named_when_npm_is_there_but_node_is_not(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(toolchains.shutil, "which", lambda name: None if name == "node" else f"/usr/bin/{name}")
    assert toolchains.blockers(toolchains.Plan(needs_node=True)) == [
        "node not found, which runs the TypeScript parser (apt-get install nodejs)"
    ]
    assert toolchains.blockers(toolchains.Plan()) == []


def test_the_command_fails_without_a_traceback_on_a_machine_without_the_tools(tmp_path: Path) -> None:
    """The `make corpora` step as a process: no dpkg, apt-get or npm on PATH, an empty home and corpus dir."""
    env = {**os.environ, "PATH": str(tmp_path), "HOME": str(tmp_path), "MAZE_CORPUS_DIR": str(tmp_path / "corpus")}
    result = subprocess.run(
        [sys.executable, "-m", "grammar_lab.corpus", "fetch", "rust", "typescript"],
        capture_output=True,
        text=True,
        env=env,
        cwd=Path(__file__).resolve().parents[2],
        timeout=120,
    )
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1, result.stderr
    assert "no apt-get/dpkg here" in result.stderr and "npm not found" in result.stderr
