"""Every library grammar wants a program: never empty output, never comments alone (issue 15).

A model that emits end-of-text at once would otherwise get ``finish_reason: "stop"`` with nothing,
and the service would call that a valid Python file. Each code grammar requires at least one real
top-level item (its header says which); JSON requires one value. The smallest programs are checked
with the language's own parser, so the floor is a real program and not an artefact of the grammar.
"""

from __future__ import annotations

import pytest

import grammars
from grammar_lab import parsers
from grammar_lab.masks import allowed_next
from grammars.tokenizers import DEFAULT_TOKENIZER_DIR, get_tokenizer
from grammars.validation import check_text

from .markers import needs_qwen

#: Per language: texts the language's parser takes that hold no item (refused), and the smallest
#: programs (accepted).
NOT_A_PROGRAM = {
    "python": ["", "\n\n", "# a comment\n", "#!/usr/bin/env python3\n# -*- coding: utf-8 -*-\n", "# no newline"],
    "go": ["", "\n", "// Package x does y.\n", "/* block */\n", "// no newline"],
    "rust": ["", "\n", "// a comment\n", "//! crate docs\n", "#![allow(dead_code)]\n", "/* block */\n"],
    "typescript": ["", "\n", "// a comment\n", "/** JSDoc */\n", ";\n", ";;\n", "// no newline"],
    "zig": ["", "\n", "// a comment\n", "//! container docs\n", "// no newline"],
    "json": ["", " ", "\n\n"],
}
SMALLEST = {
    "python": ["pass", "x = 1\n", '"""Only a docstring: an expression statement."""\n', "# c\nimport os\n"],
    "go": ["package main", "// Package x does y.\npackage x\n"],
    "rust": ["fn main() {}\n", "use std::io;\n", "//! docs\nmod m;\n", "macro_rules! m {\n    () => {};\n}\n"],
    "typescript": ["export {}\n", '"use strict"\n', "let x = 1", ";;\nf()\n", "// c\ninterface I {}\n"],
    "zig": ["const x = 1;\n", "test {}\n", "//! docs\ncomptime {}\n", "x: u8,\n"],
    "json": ["0", '""', "{}"],
}


def _language(name: str) -> str:
    return grammars.get_info(name).language


def test_every_grammar_is_covered() -> None:
    assert sorted(_language(name) for name in grammars.names()) == sorted(NOT_A_PROGRAM) == sorted(SMALLEST)


@pytest.mark.parametrize("name", grammars.names())
def test_empty_and_comment_only_outputs_are_refused(name: str) -> None:
    accepted = [text for text in NOT_A_PROGRAM[_language(name)] if check_text(grammars.load(name), text).accepted]
    assert accepted == []


@pytest.mark.parametrize("name", grammars.names())
def test_the_smallest_programs_are_accepted_and_real(name: str) -> None:
    language = _language(name)
    texts = SMALLEST[language]
    rejected = [text for text in texts if not check_text(grammars.load(name), text).accepted]
    assert rejected == []
    try:
        verdicts = parsers.check(language, texts)
    except parsers.ParserUnavailableError as error:
        pytest.skip(str(error))
    assert [(text, verdict) for text, verdict in zip(texts, verdicts, strict=True) if verdict] == []


@needs_qwen
@pytest.mark.parametrize("name", grammars.names())
def test_end_of_text_is_not_allowed_before_a_program(name: str) -> None:
    """The first mask (and the one after a comment) leaves EOS out, with the tokens vLLM uses."""
    qwen = get_tokenizer(DEFAULT_TOKENIZER_DIR)
    grammar = grammars.load(name)
    first = allowed_next(grammar, "", qwen)
    assert first and b"" not in first
    comment = next((text for text in NOT_A_PROGRAM[_language(name)] if text.startswith(("//", "#"))), None)
    if comment is not None and comment.endswith("\n"):
        assert b"" not in allowed_next(grammar, comment, qwen)
