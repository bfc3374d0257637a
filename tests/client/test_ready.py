"""Poll, the one poll loop: when it stops, what it raises, what it reports (no server)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import httpx
import openai
import pytest

from client import ConfigurationError, NotReadyError
from client._ready import Poll, ReadyWait, every


class Late(Exception):
    def __init__(self, elapsed: float, last: int) -> None:
        super().__init__(f"late after {elapsed:.2f} s, last answer {last}")
        self.elapsed, self.last = elapsed, last


def counter() -> tuple[list[int], Callable[[], int]]:
    answers: list[int] = []

    def probe() -> int:
        answers.append(len(answers))
        return answers[-1]

    return answers, probe


def test_returns_the_seconds_until_the_answer_is_ready() -> None:
    answers, probe = counter()
    took = Poll(lambda n: n == 3, timeout=10, interval=0.01, timed_out=Late).run(probe)
    assert answers == [0, 1, 2, 3] and 0.03 <= took < 5


def test_times_out_with_the_callers_error_after_a_last_probe_at_the_deadline() -> None:
    seen: list[tuple[float, int]] = []
    answers, probe = counter()
    started = time.monotonic()
    poll = Poll(lambda n: False, timeout=0.3, interval=0.2, timed_out=Late, waiting=lambda e, n: seen.append((e, n)))
    with pytest.raises(Late) as raised:
        poll.run(probe)
    assert raised.value.last == answers[-1] == 2  # at 0, 0.2 and 0.3 s: the last sleep was cut to the deadline
    assert 0.3 <= raised.value.elapsed < time.monotonic() - started + 0.01
    assert [n for _, n in seen] == answers  # waiting hears every answer, the last one included


def test_a_probe_that_raises_ends_the_wait_at_once() -> None:
    def probe() -> int:
        raise RuntimeError("the child exited")

    with pytest.raises(RuntimeError, match="the child exited"):
        Poll(lambda n: True, timeout=60, interval=10, timed_out=Late).run(probe)


def test_arun_awaits_the_probe() -> None:
    async def probe() -> str:
        await asyncio.sleep(0)
        return "ready"

    poll = Poll(lambda s: s == "ready", 5, 0.01, lambda elapsed, last: TimeoutError(last))
    assert asyncio.run(poll.arun(probe)) < 5


def test_every_reports_at_most_once_per_period() -> None:
    lines: list[float] = []
    report = every(1.0, lambda elapsed, _: lines.append(elapsed))
    for elapsed in (0.2, 0.9, 1.0, 1.5, 2.1, 3.2):
        report(elapsed, None)
    assert lines == [1.0, 2.1, 3.2]


def test_ready_wait_reads_the_gateways_answers() -> None:
    statuses: list[int | None] = []
    answers = iter([None, 503, 200])

    def get() -> httpx.Response | None:
        status = next(answers)
        return None if status is None else httpx.Response(status)

    ReadyWait("http://gw/ready", 5, 0.01, lambda _, status: statuses.append(status)).run(get)
    assert statuses == [None, 503]
    with pytest.raises(ConfigurationError, match="answered 404"):
        ReadyWait("http://gw/ready", 5, 0.01).run(lambda: httpx.Response(404))
    refused = httpx.Response(401, request=httpx.Request("GET", "http://gw/ready"))
    with pytest.raises(openai.AuthenticationError, match="401"):
        ReadyWait("http://gw/ready", 5, 0.01).run(lambda: refused)
    with pytest.raises(NotReadyError, match="last status 503") as raised:
        ReadyWait("http://gw/ready", 0.05, 0.01).run(lambda: httpx.Response(503))
    assert raised.value.last_status == 503
