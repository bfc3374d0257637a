from typing import Any

import pytest

import grammars
from gateway.constraints import ConstraintPolicy, normalize
from gateway.errors import ConstraintError, GrammarError
from gateway.grammar_check import GrammarValidator

POLICY = ConstraintPolicy(max_grammar_bytes=1_000, json_compact_whitespace=True)
GRAMMAR = 'start: "yes" | "no"'


def run(body: dict[str, Any], policy: ConstraintPolicy = POLICY) -> tuple[dict[str, Any], Any]:
    return normalize({"messages": [], **body}, GrammarValidator(), policy)


@pytest.mark.parametrize(
    ("field", "value", "kind"),
    [
        ("guided_grammar", GRAMMAR, "grammar"),
        ("guided_regex", "[0-9]+", "regex"),
        ("guided_choice", ["a", "b"], "choice"),
    ],
)
def test_legacy_fields_become_structured_outputs(field: str, value: Any, kind: str) -> None:
    out, constraint = run({field: value, "guided_decoding_backend": "xgrammar"})
    assert out["structured_outputs"] == {kind: value}
    assert field not in out and "guided_decoding_backend" not in out
    assert constraint.source == field


def test_legacy_json_string_is_parsed_and_whitespace_pinned() -> None:
    out, _ = run({"guided_json": '{"type": "object"}'})
    assert out["structured_outputs"]["json"] == {
        "type": "object",
        "x-guidance": {"whitespace_flexible": False},
    }


def test_schema_with_its_own_x_guidance_is_left_alone() -> None:
    schema = {"type": "object", "x-guidance": {"whitespace_flexible": True}}
    out, _ = run({"structured_outputs": {"json": schema}})
    assert out["structured_outputs"]["json"] == schema


def test_language_selects_the_library_grammar() -> None:
    out, constraint = run({"language": "Python"})
    assert out["structured_outputs"] == {"grammar": grammars.load("python")}
    assert "language" not in out
    assert constraint.language == "python"


def test_unknown_language_lists_the_library() -> None:
    with pytest.raises(ConstraintError, match=r"unknown language 'cobol'; available: .*python"):
        run({"language": "cobol"})


def test_two_constraints_are_refused() -> None:
    with pytest.raises(ConstraintError, match=r"one constraint.*guided_grammar, language"):
        run({"guided_grammar": GRAMMAR, "language": "python"})


def test_structured_outputs_with_two_kinds_is_refused() -> None:
    with pytest.raises(ConstraintError, match=r"structured_outputs.grammar, structured_outputs.regex"):
        run({"structured_outputs": {"grammar": GRAMMAR, "regex": "a"}})


def test_structured_outputs_options_survive_translation() -> None:
    out, _ = run({"guided_regex": "a+", "structured_outputs": {"disable_fallback": True}})
    assert out["structured_outputs"] == {"disable_fallback": True, "regex": "a+"}


def test_invalid_grammar_raises_llguidance_message() -> None:
    with pytest.raises(GrammarError, match=r"Grammar error: .*unknown name"):
        run({"structured_outputs": {"grammar": "start: nope"}})


@pytest.mark.parametrize("grammar", ["", "   "])
def test_empty_grammar_is_refused(grammar: str) -> None:
    with pytest.raises(ConstraintError, match="non-empty"):
        run({"guided_grammar": grammar})


def test_library_grammars_are_not_subject_to_the_user_size_limit() -> None:
    assert len(grammars.load("python")) > POLICY.max_grammar_bytes
    assert run({"language": "python"})[1] is not None


def test_oversized_grammar_is_refused() -> None:
    big = "start: " + " | ".join(f'"{i}"' for i in range(500))
    with pytest.raises(GrammarError, match="MAZE_MAX_GRAMMAR_BYTES"):
        run({"guided_grammar": big})


def test_response_format_schema_is_validated_and_counted() -> None:
    rf = {"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": "objec"}}}
    with pytest.raises(GrammarError):
        run({"response_format": rf})
    with pytest.raises(ConstraintError, match="one constraint"):
        run({"response_format": {"type": "json_object"}, "guided_regex": "a"})


def test_response_format_text_is_not_a_constraint() -> None:
    out, constraint = run({"response_format": {"type": "text"}})
    assert constraint is None and out["response_format"] == {"type": "text"}


def test_request_without_constraint_is_unchanged() -> None:
    out, constraint = run({"temperature": 0.5, "vendor_field": 1})
    assert constraint is None and out == {"messages": [], "temperature": 0.5, "vendor_field": 1}
