"""Normalise every way a client can ask for constrained output into vLLM's ``structured_outputs``.

vLLM ≥0.12 reads only ``structured_outputs`` (and ``response_format``); the older ``guided_*`` fields
are accepted and *silently ignored*, which would hand a user unconstrained text while they believe it
obeys their grammar. So the gateway translates them, adds its own ``language`` shortcut for library
grammars, refuses ambiguous requests (two constraints), and validates whatever remains with llguidance
before the request leaves the gateway.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from typing import Any, Literal

import grammars

from .errors import ConstraintError, GrammarError
from .grammar_check import ConstraintKind, GrammarValidator
from .regex_size import largest_regex

#: Legacy vLLM request fields and the ``structured_outputs`` key each one means.
LEGACY_FIELDS: dict[str, ConstraintKind] = {
    "guided_grammar": "grammar",
    "guided_json": "json",
    "guided_regex": "regex",
    "guided_choice": "choice",
}
#: Legacy knobs that carry no constraint of their own; the gateway always uses llguidance.
LEGACY_OPTIONS = ("guided_decoding_backend", "guided_whitespace_pattern")
#: Every kind a request can carry: llguidance checks all but structural tags.
StructuredKind = ConstraintKind | Literal["structural_tag"]
STRUCTURED_KINDS: tuple[StructuredKind, ...] = ("grammar", "json", "regex", "choice", "json_object", "structural_tag")


@dataclass(frozen=True)
class Constraint:
    """The one constraint a request carries, after normalisation."""

    kind: str
    source: str
    """The request field it came from, e.g. ``guided_grammar`` or ``language``."""
    language: str | None = None


@dataclass(frozen=True)
class ConstraintPolicy:
    """What the normaliser needs to know from the settings."""

    max_grammar_bytes: int
    json_compact_whitespace: bool
    max_regex_size: int = 100_000


def library_grammar(language: str, *, param: str = "language") -> tuple[str, str]:
    """Resolve a ``language`` value to ``(grammar name, Lark text)`` from the grammar library."""
    if not isinstance(language, str) or not language.strip():
        raise ConstraintError('language must be a non-empty string, e.g. "python"', param=param)
    wanted = language.strip().lower()
    for info in grammars.list_grammars():
        if wanted in (info.name.lower(), info.language.lower()):
            return info.name, grammars.load(info.name)
    available = ", ".join(grammars.names())
    raise ConstraintError(f"unknown language {language!r}; available: {available}", param=param)


def _check_size(spec: Any, policy: ConstraintPolicy, param: str) -> None:
    size = len(spec.encode()) if isinstance(spec, str) else len(json.dumps(spec))
    if size > policy.max_grammar_bytes:
        raise GrammarError(
            f"{param} is {size} bytes; the limit is {policy.max_grammar_bytes} (MAZE_MAX_GRAMMAR_BYTES)",
            param=param,
            code="grammar_too_large",
        )


def _check_regex_size(kind: str, spec: Any, policy: ConstraintPolicy, param: str) -> None:
    """Refuse regexes whose bounded repetitions would stall vLLM's engine (see :mod:`.regex_size`)."""
    largest = largest_regex(kind, spec)
    if largest is not None and largest[0] > policy.max_regex_size:
        size, regex = largest
        shown = regex if len(regex) <= 60 else regex[:57] + "..."
        raise GrammarError(
            f"{param} holds the regex /{shown}/ whose bounded repetitions expand to {size} elements; the limit "
            f"is {policy.max_regex_size} (MAZE_MAX_REGEX_SIZE): use unbounded repetition (*, +) or smaller counts",
            param=param,
            code="grammar_too_complex",
        )


def _check_shape(kind: str, spec: Any, param: str) -> Any:
    """Type checks llguidance would report less clearly; returns the spec in vLLM's shape."""
    if kind in ("grammar", "regex"):
        if not isinstance(spec, str) or not spec.strip():
            raise ConstraintError(f"{param} must be a non-empty string", param=param)
        return spec
    if kind == "choice":
        if not isinstance(spec, list) or not spec or not all(isinstance(c, str) for c in spec):
            raise ConstraintError(f"{param} must be a non-empty list of strings", param=param)
        return spec
    if kind == "json":
        if isinstance(spec, str):
            try:
                spec = json.loads(spec)
            except ValueError as exc:
                raise ConstraintError(f"{param} is not valid JSON: {exc}", param=param) from exc
        if not isinstance(spec, dict | bool):
            raise ConstraintError(f"{param} must be a JSON schema object", param=param)
        return spec
    if kind == "json_object":
        if spec is not True:
            raise ConstraintError(f"{param} must be true when given", param=param)
        return spec
    return spec


def _compact(schema: Any, policy: ConstraintPolicy) -> Any:
    """Pin JSON whitespace unless the schema already says how it wants it (see Settings)."""
    if policy.json_compact_whitespace and isinstance(schema, dict) and "x-guidance" not in schema:
        schema = {**schema, "x-guidance": {"whitespace_flexible": False}}
    return schema


def _found(body: dict[str, Any]) -> list[tuple[StructuredKind, str, Any]]:
    """Every constraint in the body as ``(kind, source field, spec)``."""
    found: list[tuple[StructuredKind, str, Any]] = []
    structured = body.get("structured_outputs")
    if structured is not None:
        if not isinstance(structured, dict):
            raise ConstraintError("structured_outputs must be an object", param="structured_outputs")
        for kind in STRUCTURED_KINDS:
            if structured.get(kind) not in (None, False):
                found.append((kind, f"structured_outputs.{kind}", structured[kind]))
    for field, kind in LEGACY_FIELDS.items():
        if body.get(field) is not None:
            found.append((kind, field, body[field]))
    if body.get("language") is not None:
        found.append(("grammar", "language", body["language"]))
    response_format = body.get("response_format")
    if isinstance(response_format, dict):
        rf_type = response_format.get("type")
        if rf_type == "json_schema":
            schema = (response_format.get("json_schema") or {}).get("schema")
            if schema is None:
                raise ConstraintError("response_format.json_schema.schema is required", param="response_format")
            found.append(("json", "response_format", schema))
        elif rf_type == "json_object":
            found.append(("json_object", "response_format", True))
    return found


def normalize(
    body: dict[str, Any], validator: GrammarValidator, policy: ConstraintPolicy
) -> tuple[dict[str, Any], Constraint | None]:
    """Return a copy of ``body`` whose only constraint is in vLLM's fields, validated.

    Raises :class:`ConstraintError` for ambiguous or malformed constraints and
    :class:`GrammarError` (llguidance's message) for grammars that do not compile.
    """
    found = _found(body)
    if len(found) > 1:
        fields = ", ".join(source for _, source, _ in found)
        raise ConstraintError(
            f"a request may carry one constraint, this one has {len(found)} ({fields}); keep one",
            param=found[1][1],
        )
    out = copy.copy(body)
    for field in (*LEGACY_FIELDS, *LEGACY_OPTIONS, "language"):
        out.pop(field, None)
    if not found:
        return out, None

    kind, source, spec = found[0]
    language: str | None = None
    if source == "language":
        language, spec = library_grammar(spec)
    spec = _check_shape(kind, spec, source)
    if source != "language":  # library grammars are ours; the limits guard against clients
        _check_size(spec, policy, source)
        _check_regex_size(kind, spec, policy, source)
    if kind in ("grammar", "regex", "choice", "json", "json_object"):
        validator.check(kind, spec, param=source)
    if kind == "json":
        spec = _compact(spec, policy)

    if source == "response_format":
        if kind == "json":
            response_format = copy.deepcopy(out["response_format"])
            response_format["json_schema"]["schema"] = spec
            out["response_format"] = response_format
    elif source.startswith("structured_outputs."):
        out["structured_outputs"] = {**out["structured_outputs"], kind: spec}
    else:
        options = {k: v for k, v in (out.get("structured_outputs") or {}).items() if k not in STRUCTURED_KINDS}
        out["structured_outputs"] = {**options, kind: spec}
    return out, Constraint(kind=kind, source=source, language=language)
