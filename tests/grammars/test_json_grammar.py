"""json.lark is RFC 8259 JSON: the RFC's own examples pass, near misses fail, lexemes are bounded.

Property tests against a strict JSON parser live in test_json_properties.py (they need hypothesis).
"""

from __future__ import annotations

import pytest

import grammars
from grammar_lab.check import is_strict_json
from grammars.validation import check_text

JSON = grammars.load("json")

# RFC 8259, section 13 (Examples), verbatim.
RFC_OBJECT = """\
{
  "Image": {
      "Width":  800,
      "Height": 600,
      "Title":  "View from 15th Floor",
      "Thumbnail": {
          "Url":    "http://www.example.com/image/481989943",
          "Height": 125,
          "Width":  100
      },
      "Animated" : false,
      "IDs": [116, 943, 234, 38793]
    }
}
"""
RFC_ARRAY = """\
[
  {
     "precision": "zip",
     "Latitude":  37.7668,
     "Longitude": -122.3959,
     "Address":   "",
     "City":      "SAN FRANCISCO",
     "State":     "CA",
     "Zip":       "94107",
     "Country":   "US"
  },
  {
     "precision": "zip",
     "Latitude":  37.371991,
     "Longitude": -122.026020,
     "Address":   "",
     "City":      "SUNNYVALE",
     "State":     "CA",
     "Zip":       "94085",
     "Country":   "US"
  }
]
"""

VALID = {
    "rfc_object": RFC_OBJECT,
    "rfc_array": RFC_ARRAY,
    "rfc_string": '"Hello world!"',
    "rfc_number": "42",
    "rfc_true": "true",
    "null": "null",
    "empty_containers": '{"a": {}, "b": []}',
    "surrounding_whitespace": " \t\r\n[1] \n",
    "all_escapes": r'"\" \\ \/ \b \f \n \r \t \u00e9 \uD83D\uDE00"',
    "unicode_and_del": '"é 𝄞 \x7f"',
    "numbers": "[0, -0, 1.5, -0.25, 1e10, 1E-10, 2.5e+3, 123456789012345678901234567890]",
    "nesting": '[[[{"a": [{"b": null}]}]]]',
}

INVALID = {
    "empty": "",
    "trailing_comma_array": "[1, 2,]",
    "trailing_comma_object": '{"a": 1,}',
    "single_quotes": "{'a': 1}",
    "unquoted_key": "{a: 1}",
    "leading_zero": "01",
    "leading_zero_negative": "-01",
    "plus_sign": "+1",
    "bare_fraction": ".5",
    "trailing_dot": "1.",
    "empty_exponent": "1e",
    "nan": "NaN",
    "infinity": "Infinity",
    "python_true": "True",
    "control_character_in_string": '"a\tb"',
    "unknown_escape": r'"\x41"',
    "short_unicode_escape": r'"\u12"',
    "unterminated_string": '"abc',
    "two_values": "{} {}",
    "missing_comma": "[1 2]",
    "missing_colon": '{"a" 1}',
    "comment": "[1] // no comments in JSON",
    "unbalanced": "[1]]",
}


@pytest.mark.parametrize("text", VALID.values(), ids=VALID.keys())
def test_accepts_rfc_json(text: str) -> None:
    assert is_strict_json(text)
    verdict = check_text(JSON, text)
    assert verdict.accepted, f"rejected at {verdict.where()}: {verdict.message}"


@pytest.mark.parametrize("text", INVALID.values(), ids=INVALID.keys())
def test_rejects_invalid_json(text: str) -> None:
    assert not is_strict_json(text)
    assert not check_text(JSON, text).accepted


def test_lexemes_are_bounded() -> None:
    """The bounds a sampler runs into: whitespace runs, string length, digits."""
    assert check_text(JSON, "[1" + " " * 256 + "]").accepted
    assert not check_text(JSON, "[1" + " " * 257 + "]").accepted
    assert check_text(JSON, '"' + "a" * 10_000 + '"').accepted
    assert not check_text(JSON, '"' + "a" * 10_001 + '"').accepted
    assert check_text(JSON, "1" * 100).accepted
    assert not check_text(JSON, "1" * 101).accepted
