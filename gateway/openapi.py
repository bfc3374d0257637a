"""The gateway's OpenAPI document, completed from what the routes actually answer.

FastAPI derives request bodies from the pydantic models, but three things it cannot know: refusals are
400 (not its default 422) with the OpenAI error body, every route but ``/health`` needs a bearer key,
and the OpenAI routes answer either JSON or an SSE stream. :func:`install_openapi` fills those in,
so generated clients and schema-driven testers (``tests/reliability/test_schemathesis.py``) see the
real contract.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel

from .route_table import (
    GENERATE,
    GENERATE_BATCH,
    GENERATION_PATHS,
    OPENAI_GENERATION_PATHS,
    PUBLIC_PATHS,
    UPSTREAM_PATHS,
    V1,
)
from .schemas import BatchGenerateResponse, ErrorResponse, GenerateResponse

REF = "#/components/schemas/{model}"
SUCCESS_MODELS: dict[str, type[BaseModel]] = {
    prefix + route: model
    for route, model in ((GENERATE, GenerateResponse), (GENERATE_BATCH, BatchGenerateResponse))
    for prefix in ("", V1)
}
ERRORS = {
    "400": "The request is invalid; the message names the field and what to change.",
    "401": "Missing or wrong API key (send Authorization: Bearer <key>).",
    "404": "Unknown route, grammar or model.",
    "413": "The body is over MAZE_MAX_BODY_BYTES.",
    "429": "Over MAZE_MAX_CONCURRENT_REQUESTS plus MAZE_MAX_QUEUED_REQUESTS; retry after Retry-After seconds.",
    "431": "The headers are over MAZE_MAX_HEADER_BYTES.",
    "502": "The model server answered with an error.",
    "503": "The model server is starting or restarting; retry after Retry-After seconds.",
    "504": "The model server did not answer within MAZE_UPSTREAM_TIMEOUT_SECONDS.",
}


def _error_codes(path: str, method: str) -> list[str]:
    codes = ["431"]
    if path not in PUBLIC_PATHS:
        codes.append("401")
    if method == "post":
        codes += ["400", "413"]
    if path in GENERATION_PATHS:
        codes += ["404", "429"]
    if "{" in path:
        codes.append("404")
    if path in UPSTREAM_PATHS:
        codes += ["502", "503", "504"]
    return sorted(set(codes))


def _schema_of(model: type[BaseModel], components: dict[str, Any]) -> dict[str, Any]:
    schema = model.model_json_schema(ref_template=REF)
    components.update(schema.pop("$defs", {}))
    components[model.__name__] = schema
    return {"$ref": REF.format(model=model.__name__)}


def build_openapi(app: FastAPI) -> dict[str, Any]:
    document = get_openapi(
        title=app.title, version=app.version, summary=app.summary, description=app.description, routes=app.routes
    )
    components = document.setdefault("components", {})
    schemas = components.setdefault("schemas", {})
    for name in ("HTTPValidationError", "ValidationError"):
        schemas.pop(name, None)
    components["securitySchemes"] = {
        "bearerAuth": {"type": "http", "scheme": "bearer", "description": "One of the keys in MAZE_API_KEYS."}
    }
    error_ref = _schema_of(ErrorResponse, schemas)
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            responses = operation.setdefault("responses", {})
            responses.pop("422", None)
            for code in _error_codes(path, method):
                responses[code] = {"description": ERRORS[code], "content": {"application/json": {"schema": error_ref}}}
            if path not in PUBLIC_PATHS:
                operation["security"] = [{"bearerAuth": []}]
            if path in SUCCESS_MODELS:
                ok = {"application/json": {"schema": _schema_of(SUCCESS_MODELS[path], schemas)}}
                responses["200"] = {"description": "Generated code and its metadata.", "content": ok}
            elif path in OPENAI_GENERATION_PATHS:
                responses["200"] = {
                    "description": "vLLM's OpenAI completion object, or with stream: true an SSE stream ending "
                    "in data: [DONE] (or in an error event if the model server fails mid-stream).",
                    "content": {"application/json": {"schema": {"type": "object"}}, "text/event-stream": {}},
                }
    return document


def install_openapi(app: FastAPI) -> None:
    """Serve :func:`build_openapi`'s document at ``/openapi.json`` (built once, on first request)."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = build_openapi(app)
        return app.openapi_schema

    # FastAPI's documented way to replace the schema: FastAPI.openapi is a method, replaced per app.
    app.openapi = openapi  # type: ignore[method-assign]
