"""OpenAI-compatible routes, forwarded to vLLM after constraint normalisation."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from starlette.responses import Response

from ..auth import require_api_key
from ..constraints import normalize
from ..errors import BadRequestError
from ..proxy import UPSTREAM_HEADER, forward_json, forward_stream, passthrough
from ..route_table import CHAT_COMPLETIONS, COMPLETIONS, MODELS
from ..schemas import ChatCompletionRequest, CompletionRequest, PassthroughRequest
from ..state import GatewayState, get_state

router = APIRouter(dependencies=[Depends(require_api_key)])


async def _forward(state: GatewayState, path: str, request: PassthroughRequest) -> Response:
    body: dict[str, Any] = request.forwarded()
    try:
        body, constraint = normalize(body, state.validator, state.policy)
    except BadRequestError:
        state.metrics.grammar_rejections.inc()
        raise
    if constraint is not None:
        state.metrics.constrained.labels(constraint.kind, constraint.source).inc()
    # A missing ``model`` is filled in by whichever upstream serves the request (gateway.proxy).
    if body.get("stream"):
        return await forward_stream(state, path, body, constraint)
    return await forward_json(state, path, body, constraint)


@router.post(CHAT_COMPLETIONS)
async def chat_completions(body: ChatCompletionRequest, request: Request) -> Response:
    """Chat completion; constrain with ``structured_outputs``, ``response_format``, ``language`` or a
    legacy ``guided_*`` field (translated)."""
    return await _forward(get_state(request), CHAT_COMPLETIONS, body)


@router.post(COMPLETIONS)
async def completions(body: CompletionRequest, request: Request) -> Response:
    """Text completion with the same constraint fields as chat."""
    return await _forward(get_state(request), COMPLETIONS, body)


@router.get(MODELS)
async def models(request: Request) -> Response:
    state = get_state(request)
    response = await state.upstream.request("GET", MODELS)
    answer = passthrough(response, response.content)
    answer.headers[UPSTREAM_HEADER] = "primary"
    return answer
