"""The python.lark generator: the committed file is its output, and its template checks work."""

from __future__ import annotations

import pytest

from grammar_lab import gen_python


def test_committed_python_lark_is_up_to_date() -> None:
    """Edit gen_python.py, then run ``python -m grammar_lab.gen_python``; never edit python.lark by hand."""
    assert gen_python.OUTPUT.read_text(encoding="utf-8") == gen_python.generate()
    assert gen_python.main(["--check"]) == 0


def test_check_mode_reports_a_stale_file(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    stale = tmp_path / "python.lark"
    stale.write_text("// stale\n", encoding="utf-8")
    monkeypatch.setattr(gen_python, "OUTPUT", stale)
    assert gen_python.main(["--check"]) == 1
    assert stale.read_text(encoding="utf-8") == "// stale\n"


def test_literals_become_flavoured_terminals() -> None:
    rule = 'atom_$: "(" x_b ")" | NAME_$ "if"_sp y_$'
    assert gen_python.instantiate(rule, "L") == "atom_l: LPAR x_b RPAR_L | NAME_L KW_IF_SP_L y_l"
    assert gen_python.instantiate(rule, "B") == "atom_b: LPAR x_b RPAR_B | NAME_B KW_IF_SP_B y_b"
    assert gen_python.instantiate("s_{d}: NL_{n} s_{n}", "L", depth=2) == "s_2: NL_3 s_3"


def test_unknown_literal_is_an_error() -> None:
    with pytest.raises(ValueError, match="no terminal"):
        gen_python.terminal_name("?", "L")
    with pytest.raises(ValueError, match="only keywords"):
        gen_python.terminal_name("(", "L", spaced=True)


def test_line_terminal_inside_brackets_is_caught() -> None:
    """A line-flavoured comma inside brackets would make `(a,<newline> b)` fail: refuse to generate it."""
    gen_python.check_bracket_flavours({"ok": "ok: LPAR a_b COMMA_B b_b RPAR_L COMMA_L"})
    with pytest.raises(ValueError, match="COMMA_L inside brackets"):
        gen_python.check_bracket_flavours({"bad": "bad: LPAR a_b COMMA_L b_b RPAR_L"})


def test_every_depth_has_its_newline_and_unused_rules_are_pruned() -> None:
    text = gen_python.generate()
    for depth in range(gen_python.MAX_DEPTH + 1):
        assert f"\nNL_{depth}: NL_BASE" in text
    assert f"\nNL_{gen_python.MAX_DEPTH + 1}:" not in text
    assert "\nstart: " in text
    assert "%ignore" not in text.split("\n// Dialect")[0]  # no global ignore: indentation is exact
    rules = gen_python.split_rules(text)
    assert gen_python.reachable(rules) == list(rules)
