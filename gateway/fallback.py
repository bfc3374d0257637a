"""Which upstream answers a request: vLLM (the primary) or, while it cannot, a managed fallback provider.

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
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import httpx

from .constraints import Constraint
from .errors import UpstreamError, UpstreamUnavailableError
from .route_table import CHAT_COMPLETIONS
from .settings import Settings
from .upstream import Upstream

if TYPE_CHECKING:
    from .state import GatewayState

UpstreamName = Literal["primary", "fallback"]

#: Response header naming the upstream that produced the answer.
UPSTREAM_HEADER = "x-maze-upstream"

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


@dataclass(frozen=True)
class Served:
    """An upstream's response and which upstream gave it."""

    response: httpx.Response
    upstream: UpstreamName


class Fallback:
    """The fallback provider's client, and what the gateway has learnt about the primary."""

    def __init__(self, settings: Settings, transport: httpx.AsyncBaseTransport | None = None) -> None:
        assert settings.fallback_url and settings.fallback_model, "Fallback needs MAZE_FALLBACK_URL and _MODEL"
        self.settings = settings
        self.model = settings.fallback_model
        key = settings.fallback_api_key.get_secret_value() if settings.fallback_api_key else None
        self.upstream = Upstream(settings, transport, base_url=settings.fallback_url, api_key=key)
        self.primary_down = False
        """Set when the primary could not be reached, cleared by its next answer."""

    @classmethod
    def from_settings(cls, settings: Settings, transport: httpx.AsyncBaseTransport | None = None) -> Fallback | None:
        return cls(settings, transport) if settings.fallback_url else None

    async def aclose(self) -> None:
        await self.upstream.aclose()

    def primary_wait(self) -> float:
        """How long a request the fallback could serve waits for the primary."""
        return 0.0 if self.primary_down else self.settings.fallback_wait_seconds

    def unreachable(self, exc: UpstreamError) -> UpstreamUnavailableError:
        """The fallback failed too: say so, naming the failure, and ask for a retry."""
        cause = type(exc.__cause__).__name__ if exc.__cause__ is not None else exc.code
        return UpstreamUnavailableError(
            f"the model server is unavailable and the fallback provider failed too ({cause}); "
            f"retry after {self.settings.retry_after_seconds} s",
            headers={"Retry-After": str(self.settings.retry_after_seconds)},
        )


def _count(state: GatewayState, served: Served) -> Served:
    state.metrics.upstream_requests.labels(served.upstream).inc()
    return served


def _primary_failed(
    state: GatewayState, fallback: Fallback, path: str, constraint: Constraint | None, exc: UpstreamUnavailableError
) -> None:
    """The primary could not be reached: remember it, and raise unless the fallback may take the request."""
    fallback.primary_down = True
    if may_use_fallback(path, constraint):
        return
    if path not in FALLBACK_PATHS:
        raise exc
    state.metrics.fallback_refusals.labels(constraint.kind if constraint else "none").inc()
    raise grammar_backend_unavailable(constraint, state.settings) from exc


async def _primary_body(state: GatewayState, body: dict[str, Any], wait_seconds: float | None) -> dict[str, Any]:
    if body.get("model"):
        return body
    return {"model": await state.model_name(wait_seconds), **body}


async def send(state: GatewayState, path: str, body: dict[str, Any], constraint: Constraint | None) -> Served:
    """POST ``body`` to the primary, or to the fallback when the primary cannot answer and may be replaced.

    ``body`` may omit ``model``: the primary's served model is filled in, the fallback's model replaces it.
    A server shutting down ends the wait with 503 (see :mod:`gateway.drain`).
    """
    with state.drain.cutoff():
        return await _send(state, path, body, constraint)


async def _send(state: GatewayState, path: str, body: dict[str, Any], constraint: Constraint | None) -> Served:
    fallback = state.fallback
    if fallback is None:
        response = await state.upstream.request("POST", path, json_body=await _primary_body(state, body, None))
        return _count(state, Served(response, "primary"))
    eligible = may_use_fallback(path, constraint)
    wait = fallback.primary_wait() if eligible else None
    try:
        response = await state.upstream.request("POST", path, json_body=await _primary_body(state, body, wait))
    except UpstreamUnavailableError as exc:
        _primary_failed(state, fallback, path, constraint, exc)
        return await _send_to_fallback(state, fallback, path, body)
    fallback.primary_down = False
    if response.status_code >= 500 and eligible:
        state.metrics.upstream_errors.labels(str(response.status_code)).inc()
        return await _send_to_fallback(state, fallback, path, body)
    return _count(state, Served(response, "primary"))


async def _send_to_fallback(state: GatewayState, fallback: Fallback, path: str, body: dict[str, Any]) -> Served:
    try:
        response = await fallback.upstream.request(
            "POST",
            path.removeprefix("/v1"),
            json_body=to_fallback(body, fallback.model),
            wait_seconds=state.settings.fallback_wait_seconds,
        )
    except UpstreamError as exc:
        raise fallback.unreachable(exc) from exc
    return _count(state, Served(response, "fallback"))


async def open_stream(
    state: GatewayState, stack: AsyncExitStack, path: str, body: dict[str, Any], constraint: Constraint | None
) -> Served:
    """Open a streaming POST on the primary or the fallback (same rules as :func:`send`).

    The response is entered on ``stack``: closing the stack closes the upstream connection.
    """
    fallback = state.fallback
    if fallback is None:
        primary_body = await _primary_body(state, body, None)
        response = await stack.enter_async_context(state.upstream.stream(path, primary_body))
        return _count(state, Served(response, "primary"))
    eligible = may_use_fallback(path, constraint)
    wait = fallback.primary_wait() if eligible else None
    attempt = AsyncExitStack()
    try:
        primary_body = await _primary_body(state, body, wait)
        response = await attempt.enter_async_context(state.upstream.stream(path, primary_body, wait))
    except UpstreamUnavailableError as exc:
        await attempt.aclose()
        _primary_failed(state, fallback, path, constraint, exc)
        return await _open_fallback_stream(state, fallback, stack, path, body)
    except BaseException:
        await attempt.aclose()
        raise
    fallback.primary_down = False
    if response.status_code >= 500 and eligible:
        await attempt.aclose()
        state.metrics.upstream_errors.labels(str(response.status_code)).inc()
        return await _open_fallback_stream(state, fallback, stack, path, body)
    stack.push_async_callback(attempt.aclose)
    return _count(state, Served(response, "primary"))


async def _open_fallback_stream(
    state: GatewayState, fallback: Fallback, stack: AsyncExitStack, path: str, body: dict[str, Any]
) -> Served:
    try:
        response = await stack.enter_async_context(
            fallback.upstream.stream(
                path.removeprefix("/v1"), to_fallback(body, fallback.model), state.settings.fallback_wait_seconds
            )
        )
    except UpstreamError as exc:
        raise fallback.unreachable(exc) from exc
    return _count(state, Served(response, "fallback"))
