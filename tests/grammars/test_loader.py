"""The grammar library loader: discovery from file headers, lookups, errors, and that it stays light."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import llguidance
import pytest

import grammars
from grammars import GrammarInfo, UnknownGrammarError
from grammars.validation import validate

GRAMMAR_DIR = Path(grammars.__file__).resolve().parent


def test_every_lark_file_is_listed_sorted_by_name() -> None:
    on_disk = sorted(path.stem for path in GRAMMAR_DIR.glob("*.lark"))
    assert grammars.names() == on_disk
    assert [info.name for info in grammars.list_grammars()] == on_disk
    assert {"json", "python"} <= set(on_disk)


@pytest.mark.parametrize("name", grammars.names())
def test_info_comes_from_the_file_header(name: str) -> None:
    info = grammars.get_info(name)
    assert isinstance(info, GrammarInfo)
    assert info.file == f"{name}.lark"
    assert info.language == name
    assert info.description and "\n" not in info.description
    text = grammars.load(name)
    assert text.startswith(f"// language: {info.language}\n// description: {info.description}\n")


@pytest.mark.parametrize("name", grammars.names())
def test_every_grammar_compiles_with_llguidance(name: str) -> None:
    assert validate(grammars.load(name)) == ""


@pytest.mark.parametrize("name", grammars.names())
def test_vllm_reads_it_as_lark(name: str) -> None:
    """vLLM's guidance backend passes structured_outputs.grammar as format "grammar" (Lark or GBNF,
    guessed): each library grammar must come out exactly as when compiled as Lark."""
    text = grammars.load(name)
    assert llguidance.grammar_from("grammar", text) == llguidance.grammar_from("lark", text)


def test_info_is_immutable() -> None:
    info = grammars.get_info("python")
    with pytest.raises(AttributeError):
        info.name = "other"  # type: ignore[misc]


def test_load_is_cached() -> None:
    assert grammars.load("json") is grammars.load("json")


@pytest.mark.parametrize("call", [grammars.get_info, grammars.load])
def test_unknown_name_says_what_exists(call) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(UnknownGrammarError) as caught:
        call("cobol")
    assert isinstance(caught.value, KeyError)
    message = str(caught.value)
    assert "'cobol'" in message
    for name in grammars.names():
        assert name in message
    assert caught.value.name == "cobol"
    assert caught.value.available == grammars.names()


def test_lookup_is_exact() -> None:
    with pytest.raises(UnknownGrammarError):
        grammars.get_info("Python")
    with pytest.raises(UnknownGrammarError):
        grammars.get_info("python.lark")


def test_header_parsing_stops_at_the_first_non_header_line() -> None:
    text = "// language: go\n// description: Go 1.22 source file\n\n// language: not-this\nstart: X\n"
    assert grammars._header(text) == {"language": "go", "description": "Go 1.22 source file"}
    assert grammars._header("start: X\n") == {}


def test_importing_grammars_pulls_in_nothing_heavy() -> None:
    """The gateway imports grammars at start-up: it must not drag llguidance or project code along."""
    code = (
        "import sys, grammars; grammars.list_grammars(); grammars.load('python');"
        "bad = [m for m in ('llguidance', 'transformers', 'gateway', 'app', 'client') if m in sys.modules];"
        "print(','.join(bad))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=GRAMMAR_DIR.parent
    )
    assert result.stdout.strip() == ""
