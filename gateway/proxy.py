"""Forwarding one OpenAI request to the upstream, streamed or not.

Every request goes to the primary (vLLM). Only when that fails, and a fallback provider is configured
(``MAZE_FALLBACK_URL``), does :class:`gateway.fallback.Fallback` decide whether it answers instead; its
module holds the decision table.

Streaming responses are passed through byte for byte as they arrive: no buffering, no re-encoding.
Three things are added around that pipe:

* the upstream's status is known before our response starts, so an upstream 4xx reaches the client as
  that same 4xx with vLLM's body unchanged;
* if the upstream connection breaks mid-stream, or the stream ends without ``data: [DONE]``, the client
  gets a final SSE error event (the openai SDK raises ``APIError`` on it) instead of a truncation that
  looks like success;
* when the client disconnects, leaving the generator closes the upstream response, and vLLM aborts
  the request instead of generating for nobody.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from dataclasses import dataclass
from typing import Any, Literal

import anyio
import httpx
from starlette.responses import Response, StreamingResponse

from .constraints import Constraint
from .errors import MazeError, UpstreamUnavailableError, sse_error_event
from .state import GatewayState
from .upstream import translate

DONE_MARKER = b"data: [DONE]"
PASSED_HEADERS = ("content-type",)

UpstreamName = Literal["primary", "fallback"]

#: Response header naming the upstream that produced the answer.
UPSTREAM_HEADER = "x-maze-upstream"


@dataclass(frozen=True)
class Served:
    """An upstream's response and which upstream gave it."""

    response: httpx.Response
    upstream: UpstreamName


def _served(state: GatewayState, response: httpx.Response, upstream: UpstreamName) -> Served:
    state.metrics.upstream_requests.labels(upstream).inc()
    return Served(response, upstream)


async def _with_model(state: GatewayState, body: dict[str, Any], wait_seconds: float | None) -> dict[str, Any]:
    """``body`` with the primary's served model filled in when the client named none."""
    if body.get("model"):
        return body
    return {"model": await state.model_name(wait_seconds), **body}


async def send(state: GatewayState, path: str, body: dict[str, Any], constraint: Constraint | None) -> Served:
    """POST ``body`` to the primary, or to the fallback when the primary cannot answer and may be replaced.

    ``body`` may omit ``model``: the primary's served model is filled in, the fallback's model replaces it.
    A server shutting down ends the wait with 503 (see :mod:`gateway.drain`).
    """
    fallback = state.fallback
    wait = fallback.primary_wait(path, constraint) if fallback else None
    with state.drain.cutoff():
        try:
            json_body = await _with_model(state, body, wait)
            response = await state.upstream.request("POST", path, json_body=json_body, wait_seconds=wait)
        except UpstreamUnavailableError as exc:
            if fallback is None:
                raise
            fallback.take_over(path, constraint, exc)
            return _served(state, await fallback.send(path, body), "fallback")
        if fallback is not None and fallback.replaces(response, path, constraint):
            return _served(state, await fallback.send(path, body), "fallback")
    return _served(state, response, "primary")


async def open_stream(
    state: GatewayState, stack: AsyncExitStack, path: str, body: dict[str, Any], constraint: Constraint | None
) -> Served:
    """Open a streaming POST on the primary or the fallback (same rules as :func:`send`).

    The response is entered on ``stack``: closing the stack closes the upstream connection.
    """
    fallback = state.fallback
    wait = fallback.primary_wait(path, constraint) if fallback else None
    primary = AsyncExitStack()  # its own stack, closed alone if the fallback answers instead
    try:
        stream = state.upstream.stream(path, await _with_model(state, body, wait), wait)
        response = await primary.enter_async_context(stream)
    except UpstreamUnavailableError as exc:
        if fallback is None:
            raise
        fallback.take_over(path, constraint, exc)
        return _served(state, await fallback.open_stream(stack, path, body), "fallback")
    if fallback is not None and fallback.replaces(response, path, constraint):
        await primary.aclose()
        return _served(state, await fallback.open_stream(stack, path, body), "fallback")
    stack.push_async_callback(primary.aclose)
    return _served(state, response, "primary")


def passthrough(response: httpx.Response, content: bytes) -> Response:
    """The upstream's answer as ours: same status and body, so vLLM's own 4xx reach clients unchanged."""
    headers = {k: v for k, v in response.headers.items() if k.lower() in PASSED_HEADERS}
    return Response(content=content, status_code=response.status_code, headers=headers)


def record_usage(state: GatewayState, payload: bytes) -> None:
    """Count tokens from a non-streaming completion's ``usage`` (best effort, never fails a request)."""
    try:
        usage = json.loads(payload).get("usage") or {}
    except (ValueError, AttributeError):
        return
    for kind in ("prompt_tokens", "completion_tokens"):
        if isinstance(usage.get(kind), int):
            state.metrics.tokens.labels(kind.removesuffix("_tokens")).inc(usage[kind])


async def forward_json(
    state: GatewayState, path: str, body: dict[str, Any], constraint: Constraint | None = None
) -> Response:
    """POST to the upstream that should serve it and answer as it did."""
    served = await send(state, path, body, constraint)
    response = served.response
    if response.status_code >= 500:
        state.metrics.upstream_errors.labels(str(response.status_code)).inc()
    elif response.status_code == 200:
        record_usage(state, response.content)
    answer = passthrough(response, response.content)
    answer.headers[UPSTREAM_HEADER] = served.upstream
    return answer


async def _relay(state: GatewayState, stack: AsyncExitStack, response: httpx.Response) -> AsyncIterator[bytes]:
    tail = b""
    state.drain.track(response)
    try:
        async for chunk in response.aiter_raw():
            tail = (tail + chunk)[-64:]
            yield chunk
        if DONE_MARKER not in tail:
            error: MazeError = UpstreamUnavailableError(
                "the model server closed the stream before it was complete; the output is truncated"
            )
            state.metrics.upstream_errors.labels(str(error.status_code)).inc()
            yield sse_error_event(error)
    except httpx.HTTPError as exc:
        error = state.drain.shutting_down() if state.drain.expired else translate(exc, state.settings)
        state.metrics.upstream_errors.labels(str(error.status_code)).inc()
        yield sse_error_event(error)
    finally:
        state.drain.untrack(response)
        # Shielded: on client disconnect this runs inside a cancelled scope, and the upstream
        # connection must still be closed so vLLM aborts the generation.
        with anyio.CancelScope(shield=True):
            await stack.aclose()


async def forward_stream(
    state: GatewayState, path: str, body: dict[str, Any], constraint: Constraint | None = None
) -> Response:
    stack = AsyncExitStack()
    try:
        served = await open_stream(state, stack, path, body, constraint)
        response = served.response
        if response.status_code != 200:
            content = await response.aread()
            if response.status_code >= 500:
                state.metrics.upstream_errors.labels(str(response.status_code)).inc()
            await stack.aclose()
            answer = passthrough(response, content)
            answer.headers[UPSTREAM_HEADER] = served.upstream
            return answer
    except BaseException:
        await stack.aclose()
        raise
    return StreamingResponse(
        _relay(state, stack, response),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no", UPSTREAM_HEADER: served.upstream},
    )
