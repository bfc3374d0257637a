"""Maze's wire format: ``POST /generate`` → one constrained chat completion → ``{success, code, metadata}``.

Maze's ``ModalProviderAdapter`` reads ``code``, ``metadata.finish_reason`` and
``metadata.tokens_generated``; earlier servers wrote ``metadata.tokens``, so both are present.
"""

from __future__ import annotations

import time
from typing import Any

from fastapi import APIRouter, Depends, Request

from ..auth import require_api_key
from ..constraints import library_grammar, normalize
from ..errors import BadRequestError, UpstreamError
from ..schemas import GenerateRequest
from ..state import GatewayState, get_state

router = APIRouter(dependencies=[Depends(require_api_key)])


def chat_body(req: GenerateRequest, state: GatewayState, model: str) -> dict[str, Any]:
    """The OpenAI chat request a Maze request stands for (constraint not yet normalised)."""
    system = req.system if req.system is not None else state.settings.generate_system_prompt
    messages = [{"role": "system", "content": system}] if system else []
    messages.append({"role": "user", "content": req.prompt})
    body: dict[str, Any] = {
        "model": model,
        "messages": messages,
        "max_tokens": req.max_tokens or state.settings.default_max_tokens,
    }
    for field in ("temperature", "top_p", "stop"):
        value = getattr(req, field)
        if value is not None:
            body[field] = value
    if req.grammar is not None and req.json_schema is not None:
        raise BadRequestError("send either grammar or json_schema, not both", param="json_schema")
    if req.grammar is not None:
        body["structured_outputs"] = {"grammar": req.grammar}
    elif req.json_schema is not None:
        body["structured_outputs"] = {"json": req.json_schema}
    elif req.language is not None:
        body["language"] = req.language
    return body


async def _generate(req: GenerateRequest, state: GatewayState) -> dict[str, Any]:
    started = time.perf_counter()
    language = req.language
    if req.grammar is None and req.json_schema is None and req.language is not None:
        language, _ = library_grammar(req.language)
    try:
        body, constraint = normalize(chat_body(req, state, await state.model_name()), state.validator, state.policy)
    except BadRequestError:
        state.metrics.grammar_rejections.inc()
        raise
    if constraint is not None:
        state.metrics.constrained.labels(constraint.kind, constraint.source).inc()
    response = await state.upstream.request("POST", "/v1/chat/completions", json_body=body)
    payload = response.json() if response.headers.get("content-type", "").startswith("application/json") else {}
    if response.status_code != 200:
        message = (payload.get("error") or {}).get("message") if isinstance(payload, dict) else None
        error_cls = BadRequestError if 400 <= response.status_code < 500 else UpstreamError
        raise error_cls(message or f"the model server answered HTTP {response.status_code}")
    choice = payload["choices"][0]
    usage = payload.get("usage") or {}
    completion_tokens = usage.get("completion_tokens", 0)
    for kind in ("prompt", "completion"):
        state.metrics.tokens.labels(kind).inc(usage.get(f"{kind}_tokens", 0))
    return {
        "success": True,
        "code": choice["message"].get("content") or "",
        "metadata": {
            "finish_reason": choice.get("finish_reason"),
            "tokens": completion_tokens,
            "tokens_generated": completion_tokens,
            "prompt_tokens": usage.get("prompt_tokens", 0),
            "duration_seconds": round(time.perf_counter() - started, 4),
            "grammar_constrained": constraint is not None,
            "constraint": constraint.kind if constraint else None,
            "language": language,
            "model": payload.get("model"),
        },
    }


@router.post("/generate")
async def generate(body: GenerateRequest, request: Request) -> dict[str, Any]:
    """Generate code for ``prompt``, constrained by ``grammar`` or the library grammar for ``language``."""
    return await _generate(body, get_state(request))


@router.post("/v1/generate")
async def generate_v1(body: GenerateRequest, request: Request) -> dict[str, Any]:
    """Same as ``/generate``."""
    return await _generate(body, get_state(request))
