import pytest

from gateway.errors import GrammarError
from gateway.grammar_check import GrammarValidator


def test_valid_lark_grammar_passes() -> None:
    assert GrammarValidator().error_for("grammar", 'start: "a" | "b"') == ""


def test_invalid_grammar_reports_llguidance_message() -> None:
    with pytest.raises(GrammarError) as info:
        GrammarValidator().check("grammar", 'start: "a" | undefined_rule', param="g")
    assert info.value.message.startswith("Grammar error: ")
    assert 'unknown name: "undefined_rule"' in info.value.message
    assert info.value.status_code == 400


@pytest.mark.parametrize(
    ("kind", "spec"),
    [("regex", "a(b"), ("json", {"type": "objec"}), ("grammar", "rule: NAME.2\nNAME.2: /x/")],
)
def test_each_kind_is_validated(kind: str, spec: object) -> None:
    assert GrammarValidator().error_for(kind, spec) != ""  # type: ignore[arg-type]


def test_choice_is_validated() -> None:
    assert GrammarValidator().error_for("choice", ["yes", "no"]) == ""


def test_verdicts_are_cached_and_bounded() -> None:
    validator = GrammarValidator(cache_size=2)
    for i in range(5):
        validator.error_for("grammar", f'start: "{i}"')
    assert len(validator._cache) == 2
    assert validator.error_for("grammar", 'start: "4"') == ""
