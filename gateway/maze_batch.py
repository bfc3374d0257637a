"""Maze's ``/generate/batch``: many ``/generate`` requests in one call, each succeeding or failing alone.

Every item is validated first, then the valid ones go to vLLM concurrently (at most
``max_concurrency`` at a time), so they share the GPU's batch. A batch that could not finish before the
platform cuts the request off (``MAZE_BATCH_DEADLINE_SECONDS``) is refused before anything is sent.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from pydantic import ValidationError

from .errors import BadRequestError, MazeError, describe_validation_errors, maze_error_body
from .maze_generate import Prepared, complete, prepare
from .schemas import BatchGenerateRequest, GenerateRequest
from .state import GatewayState

logger = logging.getLogger("maze.gateway")


def _prepare_item(item: dict[str, Any], state: GatewayState) -> Prepared | dict[str, Any]:
    """One batch item validated like a ``/generate`` body: prepared, or its error result (the body
    ``/generate`` would have answered with)."""
    try:
        try:
            req = GenerateRequest.model_validate(item)
        except ValidationError as exc:
            message, param = describe_validation_errors(exc.errors())
            raise BadRequestError(message, param=param, code="invalid_request") from exc
        return prepare(req, state)
    except MazeError as exc:
        return maze_error_body(exc.body())


def _check_batch_deadline(jobs: list[Prepared], concurrency: int, state: GatewayState) -> None:
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


async def generate_batch(batch: BatchGenerateRequest, state: GatewayState) -> dict[str, Any]:
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
    _check_batch_deadline([job for job in jobs if isinstance(job, Prepared)], concurrency, state)
    semaphore = asyncio.Semaphore(concurrency)

    async def run(job: Prepared | dict[str, Any]) -> dict[str, Any]:
        if not isinstance(job, Prepared):
            return job
        async with semaphore:
            try:
                return await complete(job, state)
            except MazeError as exc:
                if exc.status_code >= 500:  # logged like /generate's error handler does
                    logger.warning("batch item -> %d: %s", exc.status_code, exc.message)
                return maze_error_body(exc.body())

    results = await asyncio.gather(*(run(job) for job in jobs))
    for result in results:
        state.metrics.batch_items.labels("ok" if result["success"] else "error").inc()
    return {"success": True, "results": results}
