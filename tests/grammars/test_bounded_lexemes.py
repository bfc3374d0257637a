"""Bounded lexemes (issue 4): at a bounded lexeme's limit the mask offers only what ends it.

One character earlier the lexeme may still grow, so a weak model cannot write one comment, string or
run of blank lines forever, and a model that needs a long one is not cut short. Masks are computed over
the Qwen tokenizer, which is what vLLM feeds the matcher.
"""

from __future__ import annotations

from typing import Any

import pytest

import grammars
from grammar_lab.masks import allowed_next, blank_line_tokens_after, tokens_past_the_end
from grammars.tokenizers import DEFAULT_TOKENIZER_DIR, get_tokenizer

from .markers import needs_qwen

pytestmark = needs_qwen

#: Per grammar: a complete program, and the longest run of line breaks that may follow it.
BLANK_LINE_RUNS = {
    "go": ("package p", 65),
    "python": ("x = 1", 65),
    "typescript": ("let x = 1;", 64),
}

#: Per grammar: text ending at a bounded lexeme's limit, and what may end it there (EOS is b"").
LEXEME_LIMITS: dict[str, dict[str, tuple[str, tuple[bytes, ...]]]] = {
    "python": {
        "after a statement": ("x = 1  # " + "a" * 1999, (b"\n", b"\r", b"")),
        "own line in a block": ("if x:\n    # " + "a" * 1999, (b"\n", b"\r")),
        "between blocks": ("if x:\n    y = 1\n# " + "a" * 1999, (b"\n", b"\r", b"")),
        "in brackets": ("f(\n    1,  # " + "a" * 1999, (b"\n", b"\r")),
        "file head": ("# " + "a" * 1999, (b"\n", b"\r", b"")),
    },
    "rust": {
        "line comment": ("fn f() {\n    // " + "a" * 1999, (b"\n",)),
        "four-slash comment": ("fn f() {\n    ////" + "a" * 2000, (b"\n",)),
        "outer doc": ("/// " + "a" * 1999, (b"\n",)),
        "inner doc": ("//! " + "a" * 1999, (b"\n",)),
        "doc in a macro": ("m! {\n    /// " + "a" * 1999, (b"\n",)),
        "last comment": ("fn f() {}\n// " + "a" * 1999, (b"\n", b"")),
    },
    "zig": {
        "string": ('const s = "' + "a" * 5000, (b'"',)),
        "comment": ("fn f() void {\n    // " + "a" * 1999, (b"\n", b"\r")),
        "four-slash comment": ("fn f() void {\n    ////" + "a" * 2000, (b"\n", b"\r")),
        "doc comment": ("/// " + "a" * 1999, (b"\n", b"\r")),
        "container doc": ("//! " + "a" * 1999, (b"\n", b"\r")),
        "comment after a comma": ("const a = .{\n    1, // " + "a" * 1999, (b"\n", b"\r")),
        "multiline string line": ("const s =\n    \\\\" + "a" * 2000, (b"\n", b"\r")),
        # the file's last comment may also end the file
        "last comment": ("const a = 1;\n// " + "a" * 1999, (b"\n", b"\r", b"")),
    },
}


@pytest.mark.parametrize(("name", "program", "longest"), [(name, *run) for name, run in BLANK_LINE_RUNS.items()])
def test_blank_line_run_is_bounded(name: str, program: str, longest: int) -> None:
    """After the longest allowed run of blank lines no further line break may follow (a comment or
    code may); a shorter run can still grow."""
    qwen = get_tokenizer(DEFAULT_TOKENIZER_DIR)
    grammar = grammars.load(name)
    assert not blank_line_tokens_after(grammar, program + "\n" * longest, qwen)
    assert blank_line_tokens_after(grammar, program + "\n" * 10, qwen)


def _limits() -> list[Any]:
    return [
        pytest.param(name, prefix, ends, id=f"{name}-{case}")
        for name, limits in LEXEME_LIMITS.items()
        for case, (prefix, ends) in limits.items()
    ]


@pytest.mark.parametrize(("name", "prefix", "ends"), _limits())
def test_lexeme_bound_leaves_only_its_end(name: str, prefix: str, ends: tuple[bytes, ...]) -> None:
    """At the limit the mask offers only what ends the lexeme; one character earlier it may still grow."""
    qwen = get_tokenizer(DEFAULT_TOKENIZER_DIR)
    grammar = grammars.load(name)
    assert tokens_past_the_end(grammar, prefix, ends, qwen)[:5] == []
    assert any(t.startswith(b"a") for t in allowed_next(grammar, prefix[:-1], qwen))
