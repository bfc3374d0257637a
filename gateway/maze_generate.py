"""One Maze ``/generate``: the chat completion a Maze request stands for, and its answer in Maze's shape.

A request is prepared first (built, validated and its constraint normalised, so a bad one is refused
before anything is sent), then completed: sent to vLLM (or the fallback, see :mod:`gateway.proxy`) and
answered as ``{success, code, metadata}``.

Maze's ``ModalProviderAdapter`` reads ``code``, ``metadata.finish_reason`` and
``metadata.tokens_generated``; earlier servers wrote ``metadata.tokens``, so both are present.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from . import proxy
from .constraints import Constraint, library_grammar, normalize
from .errors import BadRequestError, UpstreamError
from .route_table import CHAT_COMPLETIONS
from .schemas import GenerateRequest
from .state import GatewayState


def chat_body(req: GenerateRequest, state: GatewayState) -> dict[str, Any]:
    """The OpenAI chat request a Maze request stands for, without ``model`` (constraint not yet normalised)."""
    system = req.system if req.system is not None else state.settings.generate_system_prompt
    messages = [{"role": "system", "content": system}] if system else []
    messages.append({"role": "user", "content": req.prompt})
    body: dict[str, Any] = {
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


@dataclass(frozen=True)
class Prepared:
    """A validated ``/generate`` request, ready to send (the model name is filled in when sent)."""

    body: dict[str, Any]
    constraint: Constraint | None
    language: str | None
    started: float


def prepare(req: GenerateRequest, state: GatewayState) -> Prepared:
    """Build and validate the upstream body; raises :class:`BadRequestError` before anything is sent."""
    started = time.perf_counter()
    language = req.language
    if req.grammar is None and req.json_schema is None and req.language is not None:
        language, _ = library_grammar(req.language)
    try:
        body, constraint = normalize(chat_body(req, state), state.validator, state.policy)
    except BadRequestError:
        state.metrics.grammar_rejections.inc()
        raise
    if constraint is not None:
        state.metrics.constrained.labels(constraint.kind, constraint.source).inc()
    return Prepared(body=body, constraint=constraint, language=language, started=started)


async def complete(job: Prepared, state: GatewayState) -> dict[str, Any]:
    """Send one prepared request to vLLM (or the fallback, see gateway.proxy) and answer in Maze's shape."""
    served = await proxy.send(state, CHAT_COMPLETIONS, job.body, job.constraint)
    response = served.response
    payload = response.json() if response.headers.get("content-type", "").startswith("application/json") else {}
    if response.status_code != 200:
        message = (payload.get("error") or {}).get("message") if isinstance(payload, dict) else None
        error_cls = BadRequestError if 400 <= response.status_code < 500 else UpstreamError
        raise error_cls(
            message or f"the model server answered HTTP {response.status_code}",
            headers={proxy.UPSTREAM_HEADER: served.upstream},
        )
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
            "duration_seconds": round(time.perf_counter() - job.started, 4),
            "grammar_constrained": job.constraint is not None,
            "constraint": job.constraint.kind if job.constraint else None,
            "language": job.language,
            "model": payload.get("model"),
            "upstream": served.upstream,
        },
    }


async def generate(req: GenerateRequest, state: GatewayState) -> dict[str, Any]:
    return await complete(prepare(req, state), state)
