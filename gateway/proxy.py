"""Forwarding one OpenAI request to the upstream, streamed or not.

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
from typing import Any

import anyio
import httpx
from starlette.responses import Response, StreamingResponse

from . import fallback
from .constraints import Constraint
from .errors import MazeError, UpstreamUnavailableError, sse_error_event
from .state import GatewayState
from .upstream import translate

DONE_MARKER = b"data: [DONE]"
PASSED_HEADERS = ("content-type",)


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
    """POST to the upstream that should serve it (see :mod:`gateway.fallback`) and answer as it did."""
    served = await fallback.send(state, path, body, constraint)
    response = served.response
    if response.status_code >= 500:
        state.metrics.upstream_errors.labels(str(response.status_code)).inc()
    elif response.status_code == 200:
        record_usage(state, response.content)
    answer = passthrough(response, response.content)
    answer.headers[fallback.UPSTREAM_HEADER] = served.upstream
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
        served = await fallback.open_stream(state, stack, path, body, constraint)
        response = served.response
        if response.status_code != 200:
            content = await response.aread()
            if response.status_code >= 500:
                state.metrics.upstream_errors.labels(str(response.status_code)).inc()
            await stack.aclose()
            answer = passthrough(response, content)
            answer.headers[fallback.UPSTREAM_HEADER] = served.upstream
            return answer
    except BaseException:
        await stack.aclose()
        raise
    return StreamingResponse(
        _relay(state, stack, response),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no", fallback.UPSTREAM_HEADER: served.upstream},
    )
