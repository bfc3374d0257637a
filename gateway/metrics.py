"""Prometheus metrics for the gateway, on a registry owned by each app instance.

A per-app registry (rather than prometheus-client's global one) lets tests and embedders build
several gateways in one process without "duplicated timeseries" errors.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .route_table import GRAMMAR, GRAMMARS, NAMED_PATHS


def route_label(path: str) -> str:
    """The route's own path, or "other" for any path not in the table, so scanners cannot explode label
    cardinality."""
    if path in NAMED_PATHS:
        return path
    if path.startswith(GRAMMARS + "/"):
        return GRAMMAR
    return "other"


@dataclass
class Metrics:
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)

    def __post_init__(self) -> None:
        counter = self._counter
        self.requests = counter("maze_requests", "Requests by route and status", "route", "status")
        self.latency = Histogram(
            "maze_request_duration_seconds",
            "Time from request to the end of the response (whole stream included)",
            ["route"],
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300),
            registry=self.registry,
        )
        self.tokens = counter("maze_tokens", "Tokens reported by the upstream (non-streaming responses)", "kind")
        self.constrained = counter(
            "maze_constrained_requests",
            "Requests forwarded with a constraint, by kind and source field",
            "kind",
            "source",
        )
        self.grammar_rejections = counter(
            "maze_grammar_rejections", "Requests refused because a constraint was invalid"
        )
        self.batch_items = counter(
            "maze_batch_items", "Items of /generate/batch requests, by outcome (ok or error)", "outcome"
        )
        self.upstream_errors = counter(
            "maze_upstream_errors", "Failures talking to the upstream, by gateway status", "status"
        )
        self.upstream_requests = counter(
            "maze_upstream_requests",
            "Requests answered by each upstream: primary (vLLM) or fallback (the managed provider)",
            "upstream",
        )
        self.fallback_refusals = counter(
            "maze_fallback_refusals",
            "Requests refused with 503 while vLLM was down, because their constraint needs the grammar backend",
            "kind",
        )

    def _counter(self, name: str, documentation: str, *labels: str) -> Counter:
        return Counter(name, documentation, labels, registry=self.registry)

    def render(self) -> bytes:
        return generate_latest(self.registry)


class MetricsMiddleware:
    """Counts every response and times it to its last byte; plain ASGI so streams are untouched."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        route = route_label(scope["path"])
        start = time.perf_counter()
        status = 500

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            self.metrics.requests.labels(route, str(status)).inc()
            self.metrics.latency.labels(route).observe(time.perf_counter() - start)
