"""Does a piece of generated text obey a grammar? The same check the smoke test and demo use."""

from __future__ import annotations

import json
from typing import Any

from app.smoke import check_output

#: A small language with room for a random model to wander, and a real structure to obey.
ARITH = r"""
start: expr
expr: term (("+" | "-") term)*
term: factor (("*" | "/") factor)*
factor: NUMBER | "(" expr ")"
NUMBER: /[1-9][0-9]{0,3}/
"""


def json_schema_grammar(schema: dict[str, Any]) -> str:
    """A Lark grammar for a JSON schema (llguidance's ``%json``), so one checker covers both."""
    return "start: %json " + json.dumps(schema)


def assert_obeys(grammar: str, text: str, finish_reason: str | None) -> None:
    """Whole grammar when the model stopped; a valid prefix when ``max_tokens`` cut it.

    A stopped output is never empty (nor only whitespace): a user who asks for a language wants code,
    and no grammar the tests send, library or their own, has an empty sentence.
    """
    if finish_reason == "stop":
        assert text.strip(), f"finish_reason=stop with no text: {text!r}"
    valid, verdict = check_output(grammar, text, finish_reason)
    assert valid, f"output {text!r} (finish_reason={finish_reason}) -> {verdict}"
