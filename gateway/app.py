"""The gateway's application factory.

Everything with a lifetime (the upstream client, the validation cache, the metrics registry) is made
in the lifespan from one :class:`Settings` and hung on ``app.state.gateway``; routes read it from
there. There is no module-level mutable state, so two gateways can live in one process.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
from fastapi import FastAPI

from .disconnect import CancelOnDisconnectMiddleware
from .drain import Drain
from .errors import install_error_handlers
from .fallback import Fallback
from .grammar_check import GrammarValidator
from .keepalive import KeepAliveMiddleware
from .limits import BodySizeLimitMiddleware, ConcurrencyLimitMiddleware, HeaderSizeLimitMiddleware
from .metrics import Metrics, MetricsMiddleware
from .openapi import install_openapi
from .routes import maze, openai, service
from .settings import Settings
from .state import GatewayState
from .upstream import Upstream

logger = logging.getLogger("maze.gateway")


def create_app(settings: Settings | None = None, *, transport: httpx.AsyncBaseTransport | None = None) -> FastAPI:
    """Build the gateway. ``transport`` replaces the network to the upstream and the fallback (tests, benchmarks)."""
    settings = settings or Settings()
    settings.check_exposure()
    metrics = Metrics()
    # Made with the app, not in the lifespan: the server's owner starts it on SIGTERM.
    drain = Drain(settings.retry_after_seconds)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        upstream = Upstream(settings, transport=transport)
        fallback = Fallback.from_settings(settings, metrics, transport=transport)
        app.state.gateway = GatewayState(
            settings=settings,
            upstream=upstream,
            validator=GrammarValidator(settings.grammar_cache_size),
            metrics=metrics,
            fallback=fallback,
            drain=drain,
        )
        logger.info(
            "gateway ready; upstream %s; fallback %s; auth %s",
            settings.upstream_url,
            f"{settings.fallback_url} (model {settings.fallback_model})" if fallback else "off",
            "on" if settings.api_keys else "off (loopback only)",
        )
        try:
            yield
        finally:
            await upstream.aclose()
            if fallback is not None:
                await fallback.aclose()

    app = FastAPI(
        title="maze-inference",
        summary="Grammar-constrained code generation: an OpenAI-compatible gateway to vLLM + llguidance.",
        version="0.1.0",
        lifespan=lifespan,
    )
    app.state.drain = drain
    install_error_handlers(app)
    install_openapi(app)
    app.include_router(service.public)
    app.include_router(service.private)
    app.include_router(openai.router)
    app.include_router(maze.router)
    # Innermost first: a client disconnect cancels the handler (and so the upstream request) even
    # while a kept-alive answer is waiting; both sit inside the limits and metrics below.
    app.add_middleware(
        KeepAliveMiddleware,
        after_seconds=settings.keepalive_after_seconds,
        interval_seconds=settings.keepalive_interval_seconds,
    )
    app.add_middleware(CancelOnDisconnectMiddleware)
    app.add_middleware(BodySizeLimitMiddleware, max_bytes=settings.max_body_bytes)
    app.add_middleware(
        ConcurrencyLimitMiddleware,
        max_concurrent=settings.max_concurrent_requests,
        max_queued=settings.max_queued_requests,
        queue_wait_seconds=settings.queue_wait_seconds,
        retry_after_seconds=settings.retry_after_seconds,
    )
    app.add_middleware(HeaderSizeLimitMiddleware, max_bytes=settings.max_header_bytes)
    app.add_middleware(MetricsMiddleware, metrics=metrics)
    return app
