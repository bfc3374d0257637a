"""The one HTTP client to the upstream OpenAI-compatible server (vLLM), and its failure policy.

* One shared :class:`httpx.AsyncClient` for the gateway's lifetime: connection reuse is most of a
  thin proxy's speed.
* Connection failures are retried with tenacity for ``upstream_wait_seconds``: while vLLM is loading
  or being restarted it refuses connections, and nothing has been sent yet, so retrying is safe and
  turns a cold start into a wait instead of an error. Nothing else is retried: a request that reached
  vLLM may already be generating.
* httpx's exceptions are translated here and nowhere else: retries exhausted → 503 with
  ``Retry-After``, read timeout → 504, connection lost mid-response → 503.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
from tenacity import AsyncRetrying, retry_if_exception_type, stop_after_delay, wait_exponential

from .errors import BadRequestError, MazeError, UpstreamError, UpstreamTimeoutError, UpstreamUnavailableError
from .settings import Settings
from .transport import UpstreamTransport

#: Errors that mean "nothing reached the upstream": safe to retry.
NOT_CONNECTED = (httpx.ConnectError, httpx.ConnectTimeout)


def translate(exc: httpx.HTTPError, settings: Settings) -> MazeError:
    """Map an httpx failure to the gateway's error for it."""
    retry_after = {"Retry-After": str(settings.retry_after_seconds)}
    if isinstance(exc, NOT_CONNECTED):
        return UpstreamUnavailableError(
            f"the model server is not reachable (starting or restarting; waited "
            f"{settings.upstream_wait_seconds:g} s); retry shortly",
            headers=retry_after,
        )
    if isinstance(exc, httpx.TimeoutException):
        return UpstreamTimeoutError(
            f"the model server did not answer within {settings.upstream_timeout_seconds:g} s "
            "(MAZE_UPSTREAM_TIMEOUT_SECONDS)"
        )
    if isinstance(exc, httpx.TransportError):
        return UpstreamUnavailableError(
            f"lost the connection to the model server ({type(exc).__name__}); it may have crashed "
            "and is being restarted; retry shortly",
            headers=retry_after,
        )
    return UpstreamError(f"upstream error: {exc}")


def encode_json(body: Any) -> bytes | None:
    """The body as the UTF-8 JSON bytes sent upstream (``None`` for no body).

    Python's JSON parser lets ``NaN``, ``Infinity`` and lone UTF-16 surrogates (``"\\ud800"``) in, but
    they cannot be sent on as JSON text; refusing them here turns what would be a crash into a 400.
    """
    if body is None:
        return None
    try:
        return json.dumps(body, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode()
    except UnicodeEncodeError as exc:
        raise BadRequestError(
            f"the request holds a lone UTF-16 surrogate ({exc.object[exc.start : exc.end]!a}), which is not "
            "valid Unicode; send valid UTF-8 text",
            code="invalid_unicode",
        ) from exc
    except ValueError as exc:
        raise BadRequestError(
            "the request holds NaN or Infinity, which JSON does not allow; send finite numbers",
            code="invalid_number",
        ) from exc


JSON_HEADERS = {"Content-Type": "application/json"}


class Upstream:
    """Requests to the upstream server with the gateway's retry and error policy."""

    def __init__(
        self,
        settings: Settings,
        transport: httpx.AsyncBaseTransport | None = None,
        *,
        base_url: str | None = None,
        api_key: str | None = None,
    ) -> None:
        """``base_url`` and ``api_key`` point the same policy at another server (the fallback provider)."""
        self.settings = settings
        headers = {}
        key = settings.upstream_api_key if base_url is None else api_key
        if key:
            headers["Authorization"] = f"Bearer {key}"
        url = base_url or settings.upstream_url
        if transport is None:
            transport = UpstreamTransport(settings.upstream_keepalive_seconds, base_url=url)
        self.client = httpx.AsyncClient(
            base_url=url,
            headers=headers,
            transport=transport,
            timeout=httpx.Timeout(settings.upstream_timeout_seconds, connect=settings.upstream_connect_timeout_seconds),
            limits=httpx.Limits(max_connections=None, max_keepalive_connections=256),
        )

    async def aclose(self) -> None:
        await self.client.aclose()

    def _retrying(self, wait_seconds: float | None, spent: float = 0.0) -> AsyncRetrying:
        budget = self.settings.upstream_wait_seconds if wait_seconds is None else wait_seconds
        return AsyncRetrying(
            retry=retry_if_exception_type(NOT_CONNECTED),
            stop=stop_after_delay(max(0.0, budget - spent)),
            wait=wait_exponential(multiplier=0.25, max=2.0),
            reraise=True,
        )

    async def is_healthy(self, timeout: float = 2.0) -> bool:
        """Whether the upstream answers ``GET /health`` with 200 right now."""
        try:
            response = await self.client.get("/health", timeout=timeout)
        except httpx.HTTPError:
            return False
        return response.status_code == 200

    async def request(
        self,
        method: str,
        path: str,
        *,
        json_body: Any = None,
        wait_seconds: float | None = None,
    ) -> httpx.Response:
        """One complete request/response, retried while the upstream is not accepting connections."""
        content = encode_json(json_body)
        headers = JSON_HEADERS if content is not None else None
        request = self.client.build_request(method, path, content=content, headers=headers)
        try:
            return await self._send(request, stream=False, wait_seconds=wait_seconds)
        except httpx.HTTPError as exc:
            raise translate(exc, self.settings) from exc

    async def _send(self, request: httpx.Request, *, stream: bool, wait_seconds: float | None) -> httpx.Response:
        """Send ``request``, retried with the policy while the upstream refuses connections.

        The first attempt runs outside tenacity, whose bookkeeping costs about as much CPU as httpx's own
        work per request. A refused first attempt is handed to tenacity as its first failure, so the
        attempts, waits and deadline are exactly the policy's.
        """
        started = time.monotonic()
        try:
            return await self.client.send(request, stream=stream)
        except NOT_CONNECTED as exc:
            refused: Exception | None = exc
        async for attempt in self._retrying(wait_seconds, spent=time.monotonic() - started):
            with attempt:
                if refused is not None:
                    error, refused = refused, None
                    raise error
                return await self.client.send(request, stream=stream)
        raise AssertionError("unreachable")  # pragma: no cover

    @asynccontextmanager
    async def stream(
        self, path: str, json_body: Any, wait_seconds: float | None = None
    ) -> AsyncIterator[httpx.Response]:
        """Open a streaming POST; the response body is read by the caller inside the context.

        Leaving the context closes the upstream connection, which is how vLLM learns that the
        client went away and aborts the generation.
        """
        request = self.client.build_request("POST", path, content=encode_json(json_body), headers=JSON_HEADERS)
        try:
            response = await self._send(request, stream=True, wait_seconds=wait_seconds)
        except httpx.HTTPError as exc:
            raise translate(exc, self.settings) from exc
        try:
            yield response
        finally:
            await response.aclose()
