"""json.lark agrees with a strict JSON parser: on whatever json.dumps writes, and on random text."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("hypothesis")

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import grammars
from grammar_lab.check import is_strict_json
from grammars.validation import check_text

JSON = grammars.load("json")

# Values whose serialisation stays inside the grammar's bounds (strings <= 10000 chars, etc.).
JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**30), max_value=10**30)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=12,
)


@settings(max_examples=150, derandomize=True, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(value=JSON_VALUES, indent=st.sampled_from([None, 0, 2, "\t"]), ascii_only=st.booleans())
def test_accepts_whatever_json_dumps_writes(value: object, indent: int | str | None, ascii_only: bool) -> None:
    text = json.dumps(value, indent=indent, ensure_ascii=ascii_only)
    assert check_text(JSON, text).accepted, text


@settings(max_examples=300, derandomize=True, deadline=None)
@given(text=st.text(alphabet='{}[]:,"0123456789.eE+- \n\\tfrnulsa/', max_size=14))
def test_agrees_with_a_strict_parser_on_random_text(text: str) -> None:
    assert check_text(JSON, text).accepted == is_strict_json(text), text
