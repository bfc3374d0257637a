"""Waiting out a cold start: the one poll loop of the project, and what the client reads in ``GET /ready``.

``Poll.run`` (``Poll.arun`` under asyncio) asks a probe until its answer counts as ready and returns the
seconds that took. Every wait for a server uses it: the client's ``wait_for_ready`` and the CLI here, vLLM's
start in ``app.process``, the smoke test, the Modal deployment, the benchmarks and the tests. The schedule is
tenacity's: a fixed interval, the last sleep cut short so the final probe runs at the deadline. A probe ends
the wait at once by raising (a refused key, a child process that died); running out of time raises the
error the caller builds from the last answer, never tenacity's ``RetryError``.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Generic, NoReturn, TypeVar, cast

import httpx
import openai
from tenacity import AsyncRetrying, RetryCallState, Retrying, retry_if_result, stop_after_delay

from ._exceptions import ConfigurationError, NotReadyError

Answer = TypeVar("Answer")

#: Called while waiting with (seconds elapsed, last status); the status is None while the gateway is unreachable.
Progress = Callable[[float, int | None], None]

#: Statuses that mean "not yet": starting or restarting vLLM, or a proxy in front of a waking container.
RETRYABLE = frozenset({502, 503, 504})


@dataclass(frozen=True)
class Poll(Generic[Answer]):
    """How one wait polls: until ``ready(answer)``, every ``interval`` seconds, for at most ``timeout`` seconds.

    ``waiting(elapsed, answer)`` runs after each answer that is not ready, the last one included; once
    ``timeout`` seconds have passed, ``timed_out(elapsed, last answer)`` is raised.
    """

    ready: Callable[[Answer], bool]
    timeout: float
    interval: float
    timed_out: Callable[[float, Answer], BaseException]
    waiting: Callable[[float, Answer], None] | None = None

    def run(self, probe: Callable[[], Answer]) -> float:
        """Call ``probe`` until its answer is ready; return the seconds it took."""
        started = time.monotonic()
        Retrying(**self._tenacity())(probe)
        return time.monotonic() - started

    async def arun(self, probe: Callable[[], Awaitable[Answer]]) -> float:
        """``run`` for an async probe, sleeping with asyncio: cancelling the wait is always safe."""

        async def attempt() -> Answer:  # tenacity awaits only what it sees is a coroutine function
            return await probe()

        started = time.monotonic()
        await AsyncRetrying(**self._tenacity())(attempt)
        return time.monotonic() - started

    def _tenacity(self) -> dict[str, Any]:
        """The tenacity arguments of this wait, shared by the sync and the async loop."""

        def elapsed(state: RetryCallState) -> float:
            return state.seconds_since_start or 0.0

        def answer(state: RetryCallState) -> Answer:
            assert state.outcome is not None  # tenacity calls these only after an attempt
            result: Answer = state.outcome.result()
            return result

        def after(state: RetryCallState) -> None:
            if self.waiting is not None:
                self.waiting(elapsed(state), answer(state))

        def give_up(state: RetryCallState) -> NoReturn:
            raise self.timed_out(elapsed(state), answer(state))

        return {
            "retry": retry_if_result(lambda result: not self.ready(result)),
            "stop": stop_after_delay(self.timeout),
            "wait": lambda state: min(self.interval, max(0.0, self.timeout - elapsed(state))),
            "after": after,
            "retry_error_callback": give_up,
        }


def every(seconds: float, report: Callable[[float, Answer], None]) -> Callable[[float, Answer], None]:
    """``report`` as a ``waiting`` callback that speaks at most once per ``seconds``, the first time after them.

    A cold start of minutes with no line at all looks exactly like a hang; a line per poll is noise.
    """
    due = seconds

    def maybe_report(elapsed: float, answer: Answer) -> None:
        nonlocal due
        if elapsed >= due:
            report(elapsed, answer)
            due = elapsed + seconds

    return maybe_report


# --- the gateway's GET /ready, as the client reads it ---------------------------------------------------------


@dataclass(frozen=True)
class ReadyWait:
    """One wait for a gateway's ``GET /ready`` to answer 200: 502/503/504 and no answer mean "not yet"."""

    url: str
    timeout: float
    interval: float
    progress: Progress | None = None

    def run(self, get: Callable[[], httpx.Response | None]) -> None:
        """Wait, sending each ``GET /ready`` with ``get`` (None for a connection that failed)."""
        self._poll().run(lambda: self.status(get()))

    async def arun(self, get: Callable[[], Awaitable[httpx.Response | None]]) -> None:
        """``run`` under asyncio."""

        async def probe() -> int | None:
            return self.status(await get())

        await self._poll().arun(probe)

    def status(self, response: httpx.Response | None) -> int | None:
        """The answer's status, None while unreachable; raises when waiting cannot help."""
        status = None if response is None else response.status_code
        if response is not None and status == 401:
            raise openai.AuthenticationError(
                f"the gateway refused the API key (GET {self.url} answered 401)",
                # openai >= 3 annotates httpx2's Response, a fork of httpx's with the attributes openai reads.
                response=cast(Any, response),
                body=None,
            )
        if status is not None and status != 200 and status not in RETRYABLE:
            raise ConfigurationError(f"GET {self.url} answered {status}: is this the gateway's root URL?")
        return status

    def _poll(self) -> Poll[int | None]:
        return Poll(lambda status: status == 200, self.timeout, self.interval, self._timed_out, self.progress)

    def _timed_out(self, elapsed: float, status: int | None) -> NotReadyError:
        seen = "unreachable" if status is None else f"last status {status}"
        return NotReadyError(f"{self.url} not ready after {self.timeout:.0f} s ({seen})", status)


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
