"""One error hierarchy for everything the gateway refuses or cannot do.

::

    MazeError                      (500 api_error)
    ├── BadRequestError            (400 invalid_request_error)
    │   ├── ConstraintError        (400: two constraints, unknown language, bad field)
    │   └── GrammarError           (400: llguidance rejected the grammar; its message verbatim)
    ├── AuthenticationError        (401)
    ├── NotFoundError              (404)
    ├── PayloadTooLargeError       (413)
    ├── HeadersTooLargeError       (431)
    ├── OverloadedError            (429 + Retry-After: more requests than MAZE_MAX_CONCURRENT_REQUESTS
    │                               plus MAZE_MAX_QUEUED_REQUESTS, or queued past MAZE_QUEUE_WAIT_SECONDS)
    └── UpstreamError              (502 upstream_error)
        ├── UpstreamUnavailableError  (503 + Retry-After: vLLM starting, restarting or down)
        └── UpstreamTimeoutError      (504: vLLM did not answer in time)

Code raises these; one exception handler (:func:`install_error_handlers`) turns them into
OpenAI-shaped bodies ``{"error": {"message", "type", "param", "code"}}``, which every OpenAI client
already knows how to surface. Maze's ``/generate`` routes add ``"success": false`` to the same body.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import JSONResponse

from .route_table import READY, is_maze_path

logger = logging.getLogger("maze.gateway")


class MazeError(Exception):
    """Base of every error the gateway answers with; carries its own HTTP status."""

    status_code: int = 500
    error_type: str = "api_error"
    code: str | None = None

    def __init__(
        self,
        message: str,
        *,
        param: str | None = None,
        code: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        if code is not None:
            self.code = code
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        return error_body(self.message, self.error_type, param=self.param, code=self.code)


class BadRequestError(MazeError):
    status_code = 400
    error_type = "invalid_request_error"


class ConstraintError(BadRequestError):
    code = "invalid_constraint"


class GrammarError(BadRequestError):
    code = "invalid_grammar"


class AuthenticationError(MazeError):
    status_code = 401
    error_type = "authentication_error"
    code = "invalid_api_key"


class NotFoundError(MazeError):
    status_code = 404
    error_type = "not_found_error"


class PayloadTooLargeError(MazeError):
    status_code = 413
    error_type = "invalid_request_error"
    code = "payload_too_large"


class HeadersTooLargeError(MazeError):
    status_code = 431
    error_type = "invalid_request_error"
    code = "headers_too_large"


class OverloadedError(MazeError):
    status_code = 429
    error_type = "rate_limit_error"
    code = "overloaded"


class UpstreamError(MazeError):
    status_code = 502
    error_type = "upstream_error"


class UpstreamUnavailableError(UpstreamError):
    status_code = 503
    error_type = "service_unavailable"
    code = "upstream_unavailable"


class UpstreamTimeoutError(UpstreamError):
    status_code = 504
    error_type = "timeout"
    code = "upstream_timeout"


def error_body(message: str, error_type: str, *, param: str | None = None, code: str | None = None) -> dict[str, Any]:
    return {"error": {"message": message, "type": error_type, "param": param, "code": code}}


def maze_error_body(body: dict[str, Any]) -> dict[str, Any]:
    """An error body as Maze's provider reads it: ``success: false`` first, since it checks ``success``
    in every answer."""
    return {"success": False, **body}


def error_body_for(path: str, body: dict[str, Any]) -> dict[str, Any]:
    """An error body as the route at ``path`` answers it: OpenAI's shape, Maze's on Maze's routes."""
    return maze_error_body(body) if is_maze_path(path) else body


def error_response(
    request: Request, status: int, body: dict[str, Any], headers: dict[str, str] | None = None
) -> JSONResponse:
    return JSONResponse(error_body_for(request.url.path, body), status_code=status, headers=headers)


def sse_error_event(error: MazeError) -> bytes:
    """An error as one SSE event: the openai SDK raises ``APIError`` when a chunk carries ``error``."""
    return b"data: " + json.dumps(error.body()).encode() + b"\n\n"


def describe_validation_errors(errors: Iterable[Mapping[str, Any]]) -> tuple[str, str | None]:
    """One message naming every bad field (FastAPI's or pydantic's error list), and the first field."""
    problems = []
    param: str | None = None
    for err in errors:
        loc = [str(part) for part in err.get("loc", ()) if part != "body"]
        where = ".".join(loc) or "body"
        param = param or where
        if err.get("type") == "json_invalid":
            detail = (err.get("ctx") or {}).get("error")
            at = f" at character {loc[0]}" if loc else ""
            problems.append(f"the request body is not valid JSON: {detail or 'decode error'}{at}")
            param = None
        elif where == "body" and err.get("type") in ("model_attributes_type", "dict_type"):
            problems.append("the request body must be a JSON object (Content-Type: application/json)")
        else:
            problems.append(f"{where}: {err.get('msg', 'invalid value')}")
    return "; ".join(problems) or "invalid request body", param


def unparsable_body_message(cause: BaseException | None) -> str:
    """What to fix in a body FastAPI could not parse (it reports only "There was an error parsing the body")."""
    if isinstance(cause, UnicodeDecodeError):
        return (
            f"the request body is not valid UTF-8 (byte 0x{cause.object[cause.start]:02x} at offset {cause.start}); "
            "send JSON encoded as UTF-8"
        )
    if isinstance(cause, RecursionError):
        return "the request body's JSON is nested too deeply; flatten it"
    if isinstance(cause, ValueError) and "integer string conversion" in str(cause):
        return "the request body holds an integer with more than 4300 digits; send a smaller number"
    if isinstance(cause, ValueError):
        return f"the request body is not valid JSON: {cause}"
    return "the request body could not be read as JSON; send a UTF-8 JSON object"


def install_error_handlers(app: FastAPI) -> None:
    """The single boundary where exceptions become HTTP answers."""

    @app.exception_handler(MazeError)
    async def _maze_error(request: Request, exc: MazeError) -> JSONResponse:
        if exc.status_code >= 500 and request.url.path != READY:  # /ready 503 is an answer, not a fault
            logger.warning("%s %s -> %d: %s", request.method, request.url.path, exc.status_code, exc.message)
        return error_response(request, exc.status_code, exc.body(), exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        message, param = describe_validation_errors(exc.errors())
        body = error_body(message, "invalid_request_error", param=param, code="invalid_request")
        return error_response(request, 400, body)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        error_type = "not_found_error" if exc.status_code == 404 else "invalid_request_error"
        message = str(exc.detail)
        if exc.status_code == 404:
            message = f"no route {request.method} {request.url.path}"
        elif exc.status_code == 405:
            message = f"method {request.method} is not allowed on {request.url.path}"
        elif exc.status_code == 400 and exc.__cause__ is not None:  # FastAPI could not parse the body
            message = unparsable_body_message(exc.__cause__)
        return error_response(request, exc.status_code, error_body(message, error_type), dict(exc.headers or {}))

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        logger.exception("unexpected error on %s %s", request.method, request.url.path)
        body = error_body("internal gateway error; see the gateway log", "api_error")
        return error_response(request, 500, body)
