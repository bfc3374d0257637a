"""Maze's wire format: ``POST /generate`` → one constrained chat completion → ``{success, code, metadata}``.

``POST /generate/batch`` answers many such requests in one call: every item is validated first, then
the valid ones go to vLLM concurrently, so they share the GPU's batch.

Maze's ``ModalProviderAdapter`` reads ``code``, ``metadata.finish_reason`` and
``metadata.tokens_generated``; earlier servers wrote ``metadata.tokens``, so both are present.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Depends, Request, Response
from pydantic import ValidationError

from .. import proxy
from ..auth import require_api_key
from ..constraints import Constraint, library_grammar, normalize
from ..errors import BadRequestError, MazeError, UpstreamError, describe_validation_errors, maze_error_body
from ..fallback import UPSTREAM_HEADER
from ..route_table import CHAT_COMPLETIONS, GENERATE, GENERATE_BATCH, V1
from ..schemas import BatchGenerateRequest, GenerateRequest
from ..state import GatewayState, get_state

logger = logging.getLogger("maze.gateway")
router = APIRouter(dependencies=[Depends(require_api_key)])


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
class _Prepared:
    """A validated ``/generate`` request, ready to send (the model name is filled in when sent)."""

    body: dict[str, Any]
    constraint: Constraint | None
    language: str | None
    started: float


def _prepare(req: GenerateRequest, state: GatewayState) -> _Prepared:
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
    return _Prepared(body=body, constraint=constraint, language=language, started=started)


async def _complete(job: _Prepared, state: GatewayState) -> dict[str, Any]:
    """Send one prepared request to vLLM (or the fallback, see gateway.proxy) and answer in Maze's shape."""
    served = await proxy.send(state, CHAT_COMPLETIONS, job.body, job.constraint)
    response = served.response
    payload = response.json() if response.headers.get("content-type", "").startswith("application/json") else {}
    if response.status_code != 200:
        message = (payload.get("error") or {}).get("message") if isinstance(payload, dict) else None
        error_cls = BadRequestError if 400 <= response.status_code < 500 else UpstreamError
        raise error_cls(
            message or f"the model server answered HTTP {response.status_code}",
            headers={UPSTREAM_HEADER: served.upstream},
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


async def _generate(req: GenerateRequest, state: GatewayState) -> dict[str, Any]:
    return await _complete(_prepare(req, state), state)


def _failed(exc: MazeError) -> dict[str, Any]:
    """A batch item's error: the body ``/generate`` would have answered with."""
    return maze_error_body(exc.body())


def _prepare_item(item: dict[str, Any], state: GatewayState) -> _Prepared | dict[str, Any]:
    """One batch item validated like a ``/generate`` body: prepared, or its error result."""
    try:
        try:
            req = GenerateRequest.model_validate(item)
        except ValidationError as exc:
            message, param = describe_validation_errors(exc.errors())
            raise BadRequestError(message, param=param, code="invalid_request") from exc
        return _prepare(req, state)
    except MazeError as exc:
        return _failed(exc)


def _check_batch_deadline(jobs: list[_Prepared], concurrency: int, state: GatewayState) -> None:
    """Refuse a batch that cannot finish before the platform cuts the request off.

    The estimate is deliberately simple and pessimistic: items run ``concurrency`` at a time, each
    wave as long as the longest ``max_tokens`` at ``MAZE_BATCH_TOKENS_PER_SECOND`` per item.
    """
    settings = state.settings
    if settings.batch_deadline_seconds is None or not jobs:
        return
    waves = -(-len(jobs) // concurrency)
    longest = max(int(job.body.get("max_tokens") or settings.default_max_tokens) for job in jobs)
    estimate = waves * longest / settings.batch_tokens_per_second
    if estimate > settings.batch_deadline_seconds:
        raise BadRequestError(
            f"this batch could take about {estimate:.0f} s ({len(jobs)} items, {concurrency} at a time, up to "
            f"{longest} tokens each at {settings.batch_tokens_per_second:g} tokens/s per item) but a request "
            f"may run {settings.batch_deadline_seconds:.0f} s (MAZE_BATCH_DEADLINE_SECONDS): send fewer items "
            "or lower max_tokens, or stream items one by one",
            param="requests",
            code="batch_too_slow",
        )


async def _generate_batch(batch: BatchGenerateRequest, state: GatewayState) -> dict[str, Any]:
    """Validate every item first, then send the valid ones concurrently so vLLM batches them."""
    settings = state.settings
    if len(batch.requests) > settings.max_batch_size:
        raise BadRequestError(
            f"a batch may hold {settings.max_batch_size} requests (MAZE_MAX_BATCH_SIZE); "
            f"this one has {len(batch.requests)}",
            param="requests",
            code="batch_too_large",
        )
    jobs = [_prepare_item(item, state) for item in batch.requests]
    concurrency = min(batch.max_concurrency or settings.max_batch_concurrency, settings.max_batch_concurrency)
    _check_batch_deadline([job for job in jobs if isinstance(job, _Prepared)], concurrency, state)
    semaphore = asyncio.Semaphore(concurrency)

    async def run(job: _Prepared | dict[str, Any]) -> dict[str, Any]:
        if not isinstance(job, _Prepared):
            return job
        async with semaphore:
            try:
                return await _complete(job, state)
            except MazeError as exc:
                if exc.status_code >= 500:  # logged like /generate's error handler does
                    logger.warning("batch item -> %d: %s", exc.status_code, exc.message)
                return _failed(exc)

    results = await asyncio.gather(*(run(job) for job in jobs))
    for result in results:
        state.metrics.batch_items.labels("ok" if result["success"] else "error").inc()
    return {"success": True, "results": results}


@router.post(GENERATE)
@router.post(V1 + GENERATE)
async def generate(body: GenerateRequest, request: Request, response: Response) -> dict[str, Any]:
    """Generate code for ``prompt``, constrained by ``grammar`` or the library grammar for ``language``."""
    result = await _generate(body, get_state(request))
    response.headers[UPSTREAM_HEADER] = result["metadata"]["upstream"]
    return result


@router.post(GENERATE_BATCH)
@router.post(V1 + GENERATE_BATCH)
async def generate_batch(body: BatchGenerateRequest, request: Request, response: Response) -> dict[str, Any]:
    """Many ``/generate`` requests at once: results in order, each item succeeding or failing alone."""
    result = await _generate_batch(body, get_state(request))
    served = {item["metadata"]["upstream"] for item in result["results"] if item["success"]}
    if served:  # each item's metadata.upstream says which; the header sums them up
        response.headers[UPSTREAM_HEADER] = served.pop() if len(served) == 1 else "mixed"
    return result
