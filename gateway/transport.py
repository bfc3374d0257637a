"""The connection layer under the upstream client: aiohttp's, behind httpx's API.

httpx's own transport (httpcore) is the costliest part of a proxied request that the gateway does not
need; ``httpx-aiohttp`` runs httpx requests on aiohttp's connection pool instead, and everything
above it (``httpx.AsyncClient``, ``httpx.MockTransport`` in tests, the error translation in
``upstream.py``) stays as it is.

One thing is corrected here: which httpx error a failure becomes. The gateway retries only when
nothing reached the upstream (:data:`gateway.upstream.NOT_CONNECTED`), but httpx-aiohttp turns every
aiohttp connection error into ``httpx.ConnectTimeout``, including a server that dropped a connection
it had accepted, after the request may already have been generating. Mapped as httpx maps them::

    aiohttp.ClientConnectorError (refused, unreachable)   -> httpx.ConnectError      (retried)
    aiohttp.ConnectionTimeoutError                        -> httpx.ConnectTimeout    (retried)
    aiohttp.ServerDisconnectedError                       -> httpx.RemoteProtocolError
    any other aiohttp.ClientConnectionError (reset, ...)  -> httpx.ReadError
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import cast

import aiohttp
import httpx
from aiohttp.helpers import get_env_proxy_for_url
from httpx_aiohttp import AiohttpTransport
from yarl import URL


def _corrected(exc: httpx.TransportError) -> httpx.TransportError:
    """The httpx error httpx itself would have raised for the aiohttp failure behind ``exc``."""
    cause = exc.__cause__
    if not isinstance(exc, httpx.ConnectTimeout) or not isinstance(cause, aiohttp.ClientConnectionError):
        return exc
    if isinstance(cause, aiohttp.ClientConnectorError):
        return httpx.ConnectError(str(cause))
    if isinstance(cause, aiohttp.ConnectionTimeoutError):
        return exc
    if isinstance(cause, aiohttp.ServerDisconnectedError):
        return httpx.RemoteProtocolError(str(cause) or "server disconnected without sending a complete response")
    return httpx.ReadError(str(cause) or type(cause).__name__)


class _Body(httpx.AsyncByteStream):
    """A response body whose read errors are corrected like the request's."""

    def __init__(self, inner: httpx.AsyncByteStream) -> None:
        self.inner = inner

    async def __aiter__(self) -> AsyncIterator[bytes]:
        try:
            async for chunk in self.inner:
                yield chunk
        except httpx.TransportError as exc:
            corrected = _corrected(exc)
            if corrected is exc:
                raise
            raise corrected from exc.__cause__

    async def aclose(self) -> None:
        # aiohttp closes (rather than reuses) a connection whose body was not read to the end, which
        # is how vLLM learns that a client went away mid-stream.
        await self.inner.aclose()


def env_proxy(url: str) -> httpx.Proxy | None:
    """The proxy that ``HTTP(S)_PROXY`` / ``NO_PROXY`` name for ``url``, as httpx's own transport
    would use it.

    Looked up once, when the transport is made: aiohttp's ``trust_env`` looks proxies and ``.netrc`` up
    again on every request, in a worker thread, which was about 15% of the gateway's CPU per request.
    """
    try:
        proxy_url, auth = get_env_proxy_for_url(URL(url))
    except LookupError:
        return None
    return httpx.Proxy(str(proxy_url), auth=(auth.login, auth.password) if auth else None)


class UpstreamTransport(AiohttpTransport):
    """httpx-aiohttp with httpx's defaults (unbounded pool, certifi verification, the environment's
    proxy for ``base_url``) and httpx's error types."""

    def __init__(self, keepalive_expiry: float = 5.0, base_url: str | None = None) -> None:
        super().__init__(client=self._session, proxy=env_proxy(base_url) if base_url else None)
        self.keepalive_expiry = keepalive_expiry

    def _session(self) -> aiohttp.ClientSession:
        # Made on the first request, inside the running event loop, as aiohttp requires.
        connector = aiohttp.TCPConnector(limit=0, keepalive_timeout=self.keepalive_expiry, ssl=self.ssl_context)
        return aiohttp.ClientSession(connector=connector)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        try:
            response = await super().handle_async_request(request)
        except httpx.TransportError as exc:
            corrected = _corrected(exc)
            if corrected is exc:
                raise
            raise corrected from exc.__cause__
        # An async transport's body streams asynchronously (httpx-aiohttp's AiohttpResponseStream);
        # httpx types Response.stream for both kinds.
        response.stream = _Body(cast(httpx.AsyncByteStream, response.stream))
        return response
