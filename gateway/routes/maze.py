"""Maze's routes: ``POST /generate`` and ``POST /generate/batch`` (and both under ``/v1``).

The work is done in :mod:`gateway.maze_generate` and :mod:`gateway.maze_batch`; a route parses, calls
and adds the header naming the upstream that answered.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request, Response

from .. import maze_batch, maze_generate
from ..auth import require_api_key
from ..proxy import UPSTREAM_HEADER
from ..route_table import GENERATE, GENERATE_BATCH, V1
from ..schemas import BatchGenerateRequest, GenerateRequest
from ..state import get_state

router = APIRouter(dependencies=[Depends(require_api_key)])


@router.post(GENERATE)
@router.post(V1 + GENERATE)
async def generate(body: GenerateRequest, request: Request, response: Response) -> dict[str, Any]:
    """Generate code for ``prompt``, constrained by ``grammar`` or the library grammar for ``language``."""
    result = await maze_generate.generate(body, get_state(request))
    response.headers[UPSTREAM_HEADER] = result["metadata"]["upstream"]
    return result


@router.post(GENERATE_BATCH)
@router.post(V1 + GENERATE_BATCH)
async def generate_batch(body: BatchGenerateRequest, request: Request, response: Response) -> dict[str, Any]:
    """Many ``/generate`` requests at once: results in order, each item succeeding or failing alone."""
    result = await maze_batch.generate_batch(body, get_state(request))
    served = {item["metadata"]["upstream"] for item in result["results"] if item["success"]}
    if served:  # each item's metadata.upstream says which; the header sums them up
        response.headers[UPSTREAM_HEADER] = served.pop() if len(served) == 1 else "mixed"
    return result
