"""The managed fallback provider that answers instead of vLLM (the primary) while vLLM cannot.

:mod:`gateway.proxy` sends every request to the primary and turns to the fallback only when that fails;
this module says when the fallback may take a request, translates the request for it and sends it.

The fallback is an OpenAI-compatible provider that knows nothing of llguidance. It can enforce one kind
of constraint, a JSON schema through ``response_format`` with ``strict: true``, so it may serve exactly
the requests that carry no constraint or only a JSON schema. The decision table:

====================================  ============================  ==========================================
primary (vLLM)                        no constraint / JSON schema   grammar, regex, choice, json_object, ...
====================================  ============================  ==========================================
answers (2xx, 4xx)                    primary                       primary
not accepting connections for         fallback                      waits ``upstream_wait_seconds``, then 503
``fallback_wait_seconds``                                           + Retry-After: "grammar backend unavailable"
connection lost before an answer      fallback                      503 + Retry-After: same message
answers 5xx                           fallback                      primary's 5xx
read timeout (504)                    504 (it may still be working) 504
====================================  ============================  ==========================================

Only chat completions (``/v1/chat/completions``, and ``/generate`` which is one) go to the fallback:
OpenAI-style text completions have no ``response_format``. A stream switches only before its first
byte; once vLLM has sent part of an answer, a failure ends the stream with an error event, because a
second upstream would start the answer again. A constrained request is never sent to the fallback: an
unconstrained answer to a grammar request would look like success and be wrong.

Once the primary was found unreachable, requests the fallback can serve try it once instead of waiting
``fallback_wait_seconds``; the first answer from the primary clears that, so traffic returns to it as
soon as it accepts connections again.
"""

from __future__ import annotations

import copy
from contextlib import AsyncExitStack
from typing import Any

import httpx

from .constraints import Constraint
from .errors import UpstreamError, UpstreamUnavailableError
from .metrics import Metrics
from .route_table import CHAT_COMPLETIONS, V1
from .settings import Settings
from .upstream import Upstream

#: Paths the fallback can serve (the primary's paths; the fallback's base URL already ends in ``/v1``).
FALLBACK_PATHS = frozenset({CHAT_COMPLETIONS})

#: Constraint kinds a provider without llguidance enforces: a JSON schema, as ``response_format``.
FALLBACK_KINDS = frozenset({"json"})

#: Chat-completion fields OpenAI-style providers accept. Everything else (vLLM's ``structured_outputs``,
#: ``top_k``, ``repetition_penalty``, ``ignore_eos``, ...) is dropped: OpenAI rejects unknown fields.
OPENAI_CHAT_FIELDS = frozenset(
    {
        "messages",
        "model",
        "frequency_penalty",
        "presence_penalty",
        "logit_bias",
        "logprobs",
        "top_logprobs",
        "max_tokens",
        "max_completion_tokens",
        "n",
        "response_format",
        "seed",
        "stop",
        "stream",
        "stream_options",
        "temperature",
        "top_p",
        "tools",
        "tool_choice",
        "parallel_tool_calls",
        "user",
    }
)

#: ``response_format.json_schema.name`` when the client gave none (OpenAI requires one).
DEFAULT_SCHEMA_NAME = "maze_output"


def may_use_fallback(path: str, constraint: Constraint | None) -> bool:
    """Whether a provider without a grammar engine can answer this request faithfully."""
    return path in FALLBACK_PATHS and (constraint is None or constraint.kind in FALLBACK_KINDS)


def _openai_schema(schema: Any) -> Any:
    """The schema without llguidance's ``x-guidance`` options, which a provider would reject."""
    if isinstance(schema, dict):
        return {k: v for k, v in schema.items() if k != "x-guidance"}
    return schema


def to_fallback(body: dict[str, Any], model: str) -> dict[str, Any]:
    """A normalised chat body (see :func:`gateway.constraints.normalize`) as an OpenAI-style provider reads it."""
    out = {k: copy.deepcopy(v) for k, v in body.items() if k in OPENAI_CHAT_FIELDS}
    out["model"] = model
    schema: Any = None
    name, description = DEFAULT_SCHEMA_NAME, None
    structured = body.get("structured_outputs")
    if isinstance(structured, dict) and structured.get("json") is not None:
        schema = structured["json"]
    response_format = body.get("response_format")
    if isinstance(response_format, dict) and response_format.get("type") == "json_schema":
        spec = response_format.get("json_schema") or {}
        schema = spec.get("schema")
        name = spec.get("name") or name
        description = spec.get("description")
    if schema is not None:
        json_schema: dict[str, Any] = {"name": name, "schema": _openai_schema(schema), "strict": True}
        if description:
            json_schema["description"] = description
        out["response_format"] = {"type": "json_schema", "json_schema": json_schema}
    return out


def grammar_backend_unavailable(constraint: Constraint | None, settings: Settings) -> UpstreamUnavailableError:
    """The 503 for a request only the primary may serve, while the primary is down."""
    kind = constraint.kind if constraint else "no"
    return UpstreamUnavailableError(
        f"the grammar backend (vLLM with llguidance) is unavailable (starting, restarting or down); a request "
        f"with a {kind} constraint is never sent to the fallback provider, which cannot enforce it; "
        f"retry after {settings.retry_after_seconds} s",
        code="grammar_backend_unavailable",
        headers={"Retry-After": str(settings.retry_after_seconds)},
    )


class Fallback:
    """The fallback provider's client, and what the gateway has learnt about the primary.

    The primary is called by :mod:`gateway.proxy`, which asks this class only around that call: how
    long to wait for the primary, and, when the primary fails, whether the fallback takes the request.
    """

    def __init__(self, settings: Settings, metrics: Metrics, transport: httpx.AsyncBaseTransport | None = None) -> None:
        assert settings.fallback_url and settings.fallback_model, "Fallback needs MAZE_FALLBACK_URL and _MODEL"
        self.settings = settings
        self.metrics = metrics
        self.model = settings.fallback_model
        key = settings.fallback_api_key.get_secret_value() if settings.fallback_api_key else None
        self.upstream = Upstream(settings, transport, base_url=settings.fallback_url, api_key=key)
        self.primary_down = False
        """Set when the primary could not be reached, cleared by its next answer."""

    @classmethod
    def from_settings(
        cls, settings: Settings, metrics: Metrics, transport: httpx.AsyncBaseTransport | None = None
    ) -> Fallback | None:
        return cls(settings, metrics, transport) if settings.fallback_url else None

    async def aclose(self) -> None:
        await self.upstream.aclose()

    def primary_wait(self, path: str, constraint: Constraint | None) -> float | None:
        """How long the primary is waited for: a request the fallback could serve waits
        ``fallback_wait_seconds``, or not at all once the primary was found down; any other request
        waits as long as the primary's own policy says (``None``)."""
        if not may_use_fallback(path, constraint):
            return None
        return 0.0 if self.primary_down else self.settings.fallback_wait_seconds

    def take_over(self, path: str, constraint: Constraint | None, exc: UpstreamUnavailableError) -> None:
        """The primary could not be reached: remember it, and raise unless the fallback may serve the request."""
        self.primary_down = True
        if may_use_fallback(path, constraint):
            return
        if path not in FALLBACK_PATHS:
            raise exc
        self.metrics.fallback_refusals.labels(constraint.kind if constraint else "none").inc()
        raise grammar_backend_unavailable(constraint, self.settings) from exc

    def replaces(self, response: httpx.Response, path: str, constraint: Constraint | None) -> bool:
        """The primary answered: remember it, and say whether the fallback answers instead (the primary
        failed with a 5xx on a request the fallback may serve)."""
        self.primary_down = False
        if response.status_code >= 500 and may_use_fallback(path, constraint):
            self.metrics.upstream_errors.labels(str(response.status_code)).inc()
            return True
        return False

    async def send(self, path: str, body: dict[str, Any]) -> httpx.Response:
        """POST ``body`` (the primary's, translated here) to the fallback."""
        try:
            return await self.upstream.request(
                "POST",
                path.removeprefix(V1),
                json_body=to_fallback(body, self.model),
                wait_seconds=self.settings.fallback_wait_seconds,
            )
        except UpstreamError as exc:
            raise self.unreachable(exc) from exc

    async def open_stream(self, stack: AsyncExitStack, path: str, body: dict[str, Any]) -> httpx.Response:
        """Open a streaming POST of ``body`` (translated here) on the fallback, entered on ``stack``."""
        stream = self.upstream.stream(
            path.removeprefix(V1), to_fallback(body, self.model), self.settings.fallback_wait_seconds
        )
        try:
            return await stack.enter_async_context(stream)
        except UpstreamError as exc:
            raise self.unreachable(exc) from exc

    def unreachable(self, exc: UpstreamError) -> UpstreamUnavailableError:
        """The fallback failed too: say so, naming the failure, and ask for a retry."""
        cause = type(exc.__cause__).__name__ if exc.__cause__ is not None else exc.code
        return UpstreamUnavailableError(
            f"the model server is unavailable and the fallback provider failed too ({cause}); "
            f"retry after {self.settings.retry_after_seconds} s",
            headers={"Retry-After": str(self.settings.retry_after_seconds)},
        )
