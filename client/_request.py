"""What a ``generate`` call sends and how its answer is read: pure functions shared by the sync and async clients.

Only the I/O differs between ``MazeClient`` and ``AsyncMazeClient``; everything here is the same for both.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ._exceptions import ConfigurationError, ConstraintError


def constraint_body(
    *,
    language: str | None = None,
    grammar: str | None = None,
    json_schema: dict[str, Any] | str | None = None,
    regex: str | None = None,
    choice: Sequence[str] | None = None,
) -> dict[str, Any]:
    """The ``extra_body`` for at most one constraint: ``{"language": L}`` or ``{"structured_outputs": {...}}``."""
    given = {
        name: value
        for name, value in (
            ("language", language),
            ("grammar", grammar),
            ("json_schema", json_schema),
            ("regex", regex),
            ("choice", choice),
        )
        if value is not None
    }
    if len(given) > 1:
        raise ConstraintError(f"pass at most one constraint, got {len(given)}: {', '.join(given)}")
    if not given:
        return {}
    ((name, value),) = given.items()
    if name == "language":
        return {"language": value}
    field = {"grammar": "grammar", "json_schema": "json", "regex": "regex", "choice": "choice"}[name]
    return {"structured_outputs": {field: list(value) if name == "choice" else value}}


def chat_request(
    prompt: str,
    *,
    model: str,
    extra_body: dict[str, Any],
    system: str | None = None,
    max_tokens: int | None = None,
    temperature: float | None = None,
    top_p: float | None = None,
    stop: Sequence[str] | None = None,
    seed: int | None = None,
    stream: bool = False,
) -> dict[str, Any]:
    """Keyword arguments for ``chat.completions.create``; unset sampling options are left to the server.

    Streams ask for a final usage chunk, so a stream's token count is the server's, not a count of deltas.
    """
    messages = [{"role": "system", "content": system}] if system else []
    messages.append({"role": "user", "content": prompt})
    request: dict[str, Any] = {"model": model, "messages": messages, "stream": stream}
    optional = {"max_tokens": max_tokens, "temperature": temperature, "top_p": top_p, "stop": stop, "seed": seed}
    request.update({name: value for name, value in optional.items() if value is not None})
    if stop is not None:
        request["stop"] = list(stop)
    if stream:
        request["stream_options"] = {"include_usage": True}
    if extra_body:
        request["extra_body"] = extra_body
    return request


def first_model(models: Any) -> str:
    """The id of the first model of a ``/v1/models`` page."""
    if not models.data:
        raise ConfigurationError("the gateway lists no models (GET /v1/models is empty)")
    return str(models.data[0].id)


def completion_text(completion: Any) -> str:
    return completion.choices[0].message.content or ""


def chunk_delta(chunk: Any) -> tuple[str, str | None]:
    """The text delta and finish_reason (or None) of one stream chunk; usage-only chunks have no choices."""
    if not chunk.choices:
        return "", None
    choice = chunk.choices[0]
    return choice.delta.content or "", choice.finish_reason
