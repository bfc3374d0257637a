"""Grammar validation with llguidance, before anything is sent upstream.

vLLM validates grammars too, but when a request streams it answers HTTP 200 and reports the error
inside the event stream, which many clients show as an empty completion. Checking here with the same
llguidance release vLLM pins gives a proper 400 with llguidance's own message, streaming or not, in
about a millisecond. This is the only gateway module that touches llguidance.
"""

from __future__ import annotations

import hashlib
import json
from collections import OrderedDict
from threading import Lock
from typing import Any, Literal

import llguidance

from .errors import GrammarError

ConstraintKind = Literal["grammar", "json", "regex", "choice", "json_object"]


def _serialize(kind: ConstraintKind, spec: Any) -> str:
    """Mirror of vLLM's ``serialize_guidance_grammar`` for the guidance backend."""
    if kind == "json":
        return llguidance.LLMatcher.grammar_from_json_schema(spec)
    if kind == "json_object":
        return llguidance.LLMatcher.grammar_from_json_schema('{"type": "object"}')
    if kind == "choice":
        return llguidance.grammar_from("choice", json.dumps(spec))
    # "grammar" accepts Lark (and GBNF), exactly as vLLM passes it on.
    return llguidance.grammar_from(kind, spec)


class GrammarValidator:
    """Validates constraints and remembers verdicts by content hash.

    The cache matters because library grammars and clients' own grammars repeat on every request;
    a verdict is a pure function of (kind, text), so caching cannot go stale.
    """

    def __init__(self, cache_size: int = 256) -> None:
        self._cache: OrderedDict[str, str] = OrderedDict()
        self._cache_size = cache_size
        self._lock = Lock()

    @staticmethod
    def _key(kind: str, spec: Any) -> str:
        text = spec if isinstance(spec, str) else json.dumps(spec, sort_keys=True)
        return hashlib.sha256(f"{kind}\0{text}".encode()).hexdigest()

    def error_for(self, kind: ConstraintKind, spec: Any) -> str:
        """llguidance's message for an invalid constraint, or ``""`` when it is valid."""
        key = self._key(kind, spec)
        with self._lock:
            if key in self._cache:
                self._cache.move_to_end(key)
                return self._cache[key]
        try:
            message = llguidance.LLMatcher.validate_grammar(_serialize(kind, spec))
        except (ValueError, TypeError, KeyError) as exc:
            message = str(exc) or type(exc).__name__
        with self._lock:
            self._cache[key] = message
            while len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
        return message

    def check(self, kind: ConstraintKind, spec: Any, *, param: str) -> None:
        """Raise :class:`GrammarError` with llguidance's message if the constraint is invalid."""
        message = self.error_for(kind, spec)
        if message:
            raise GrammarError(f"Grammar error: {message.rstrip()}", param=param)
