"""Waiting out a cold start: poll ``GET /ready`` until 200. The decisions live in ``ReadyPoll``; the sync and
async loops around it only differ in how they sleep and send."""

from __future__ import annotations

import time
from collections.abc import Callable

import httpx
import openai

from ._exceptions import ConfigurationError, NotReadyError

#: Called while waiting with (seconds elapsed, last status); the status is None while the gateway is unreachable.
Progress = Callable[[float, int | None], None]

#: Statuses that mean "not yet": starting or restarting vLLM, or a proxy in front of a waking container.
RETRYABLE = frozenset({502, 503, 504})


class ReadyPoll:
    """One wait: feed it each answer (or None for a connection failure) and it says how long to sleep."""

    def __init__(self, url: str, timeout: float, interval: float, progress: Progress | None) -> None:
        self.url = url
        self.timeout = timeout
        self.interval = interval
        self.progress = progress
        self.started = time.monotonic()
        self.last_status: int | None = None

    def next_sleep(self, response: httpx.Response | None) -> float | None:
        """None when ready; otherwise seconds to sleep before the next poll. Raises when waiting cannot help."""
        status = None if response is None else response.status_code
        if status == 200:
            return None
        if response is not None and status == 401:
            raise openai.AuthenticationError(
                f"the gateway refused the API key (GET {self.url} answered 401)", response=response, body=None
            )
        if status is not None and status not in RETRYABLE:
            raise ConfigurationError(f"GET {self.url} answered {status}: is this the gateway's root URL?")
        self.last_status = status
        elapsed = time.monotonic() - self.started
        if self.progress is not None:
            self.progress(elapsed, status)
        remaining = self.timeout - elapsed
        if remaining <= 0:
            seen = "unreachable" if status is None else f"last status {status}"
            raise NotReadyError(f"{self.url} not ready after {self.timeout:.0f} s ({seen})", status)
        return min(self.interval, remaining)


def get_ready(client: httpx.Client, url: str, headers: dict[str, str]) -> httpx.Response | None:
    try:
        return client.get(url, headers=headers)
    except httpx.TransportError:  # refused, reset, or timed out: the container is not up yet
        return None


async def aget_ready(client: httpx.AsyncClient, url: str, headers: dict[str, str]) -> httpx.Response | None:
    try:
        return await client.get(url, headers=headers)
    except httpx.TransportError:
        return None
