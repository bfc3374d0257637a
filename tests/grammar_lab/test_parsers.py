"""grammar_lab.parsers: each language's real parser accepts a valid file and explains a broken one."""

from __future__ import annotations

import pytest

from grammar_lab import parsers

CASES = {
    "python": ("def f(x):\n    return x\n", "def f(:\n", "SyntaxError"),
    "json": ('{"a": [1, 2.5, null]}', "[NaN]", "NaN"),
    "go": ("package main\n\nfunc main() {}\n", "package main\n\nfunc main( {}\n", "expected"),
    # `mod x;` would make rustfmt look for x.rs if it were given a path: stdin parses just this text.
    "rust": ("mod missing;\nfn main() {}\n", "fn main( {}\n", "unclosed delimiter"),
    "typescript": ("const x: number = 1;\n", "const x: = ;\n", "expected"),
    "zig": ("pub fn main() void {}\n", "pub fn main() void {\n", "expected"),
}


@pytest.mark.parametrize("language", sorted(CASES))
def test_parser_accepts_valid_and_explains_invalid(language: str) -> None:
    good, bad, words = CASES[language]
    verdicts = parsers.check(language, [good, bad, good])
    assert verdicts[0] is None and verdicts[2] is None
    assert verdicts[1] is not None and words.lower() in verdicts[1].lower()


def test_every_library_language_has_a_parser() -> None:
    import grammars

    assert {info.language for info in grammars.list_grammars()} <= set(parsers.LANGUAGES)


def test_unknown_language_and_empty_batch() -> None:
    with pytest.raises(KeyError, match="no parser for 'cobol'"):
        parsers.check("cobol", ["x"])
    assert parsers.check("go", []) == []


def test_zig_is_judged_by_its_parser_not_by_astgen() -> None:
    """An unused local is a parse-valid file (ast-check would refuse it; no grammar can know that)."""
    assert parsers.check("zig", ["fn f() void {\n    const x = 1;\n}\n", "fn f( void {}\n"])[0] is None
    assert parsers.check("zig", ["fn f( void {}\n"])[0] is not None
