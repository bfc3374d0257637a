"""Maze's provider surface over the gateway's OpenAI route, without depending on Maze.

``GenerationRequest`` / ``GenerationResponse`` mirror Maze's fields; ``MazeInferenceProvider`` accepts Maze's own
request objects too (anything with those attributes). Requests go through the openai SDK's chat route, so
errors are the SDK's (``openai.AuthenticationError``, ``openai.BadRequestError`` for an invalid grammar...).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Protocol

from ._client import MazeClient
from ._request import chat_request, constraint_body


@dataclass
class GenerationRequest:
    """Maze's request fields. ``metadata["language"]`` names a library grammar, used when ``grammar`` is unset."""

    prompt: str
    grammar: str | None = None
    schema: dict[str, Any] | str | None = None
    max_tokens: int = 2048
    temperature: float = 0.7
    top_p: float = 0.95
    stop_sequences: list[str] = field(default_factory=list)
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass
class GenerationResponse:
    """Maze's response fields; ``metadata`` adds model, prompt_tokens, constraint and the request id."""

    text: str
    finish_reason: str
    tokens_generated: int
    metadata: dict[str, Any] = field(default_factory=dict)


class RequestLike(Protocol):
    prompt: str
    grammar: str | None
    schema: Any
    max_tokens: int
    temperature: float
    top_p: float
    stop_sequences: Sequence[str]
    metadata: dict[str, Any]


def _constraint(request: RequestLike) -> tuple[str | None, dict[str, Any]]:
    """(constraint name, extra_body). A grammar wins over ``metadata["language"]``, which then stays metadata."""
    schema = request.schema
    if isinstance(schema, str):
        schema = json.loads(schema)
    language = (request.metadata or {}).get("language")
    if request.grammar or schema:
        language = None
    body = constraint_body(language=language, grammar=request.grammar or None, json_schema=schema or None)
    if "language" in body:
        return "language", body
    return (next(iter(body["structured_outputs"])), body) if body else (None, body)


class MazeInferenceProvider:
    """Maze's ``ProviderAdapter`` surface: ``generate``, ``supports_grammar``, ``supports_json_schema``, plus a batch.

    Built from a ``MazeClient``, or from the same arguments (``base_url``, ``api_key``, ``model``...) or the
    ``MAZE_ENDPOINT_URL`` / ``MAZE_API_KEY`` environment variables.
    """

    def __init__(self, client: MazeClient | None = None, **client_kwargs: Any) -> None:
        self.client = client if client is not None else MazeClient(**client_kwargs)

    def supports_grammar(self) -> bool:
        return True

    def supports_json_schema(self) -> bool:
        return True

    def generate(self, request: RequestLike) -> GenerationResponse:
        constraint, body = _constraint(request)
        kwargs = chat_request(
            request.prompt,
            model=self.client.resolve_model(),
            extra_body=body,
            max_tokens=request.max_tokens,
            temperature=request.temperature,
            top_p=request.top_p,
            stop=list(request.stop_sequences) or None,
        )
        completion = self.client.openai.chat.completions.create(**kwargs)
        choice = completion.choices[0]
        usage = completion.usage
        return GenerationResponse(
            text=choice.message.content or "",
            finish_reason=choice.finish_reason or "stop",
            tokens_generated=usage.completion_tokens if usage else 0,
            metadata={
                "model": completion.model,
                "id": completion.id,
                "prompt_tokens": usage.prompt_tokens if usage else None,
                "constraint": constraint,
                "grammar_constrained": constraint is not None,
                "language": (request.metadata or {}).get("language"),
            },
        )

    def generate_batch(self, requests: Sequence[RequestLike], max_concurrency: int = 8) -> list[GenerationResponse]:
        """Send up to ``max_concurrency`` requests at once; answers come back in the order of ``requests``.

        The first failure is raised (after the requests already running have finished).
        """
        if not requests:
            return []
        self.client.resolve_model()  # once, before the threads race for it
        with ThreadPoolExecutor(max_workers=max(1, min(max_concurrency, len(requests)))) as pool:
            return list(pool.map(self.generate, requests))
