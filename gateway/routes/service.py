"""Service routes: liveness, readiness, metrics and the grammar library."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from starlette.responses import PlainTextResponse, Response

import grammars

from ..auth import require_api_key
from ..errors import NotFoundError, UpstreamUnavailableError
from ..route_table import GRAMMAR, GRAMMARS, HEALTH, METRICS, READY
from ..state import get_state

public = APIRouter()
private = APIRouter(dependencies=[Depends(require_api_key)])


@public.get(HEALTH)
async def health() -> dict[str, str]:
    """The gateway process is alive (no auth, no upstream check): for liveness probes."""
    return {"status": "ok"}


@private.get(READY)
async def ready(request: Request) -> dict[str, str]:
    """The model server answers its health check: requests will be served now."""
    state = get_state(request)
    if not await state.upstream.is_healthy():
        raise UpstreamUnavailableError(
            "the model server is not ready (starting, restarting or down)",
            headers={"Retry-After": str(state.settings.retry_after_seconds)},
        )
    return {"status": "ready"}


@private.get(METRICS)
async def metrics(request: Request) -> Response:
    return PlainTextResponse(get_state(request).metrics.render(), media_type="text/plain; version=0.0.4")


def _describe(info: grammars.GrammarInfo) -> dict[str, Any]:
    return {"name": info.name, "language": info.language, "file": info.file, "description": info.description}


@private.get(GRAMMARS)
async def list_grammars() -> dict[str, Any]:
    """The grammar library; any ``name`` can be used as ``language`` in a request."""
    return {"object": "list", "data": [_describe(info) for info in grammars.list_grammars()]}


@private.get(GRAMMAR)
async def get_grammar(name: str) -> dict[str, Any]:
    try:
        info = grammars.get_info(name)
    except grammars.UnknownGrammarError as exc:
        raise NotFoundError(
            f"unknown grammar {name!r}; available: {', '.join(grammars.names())}", param="name"
        ) from exc
    return {**_describe(info), "grammar": grammars.load(name)}
