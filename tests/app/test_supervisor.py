"""serve() with a fake vLLM (tests/app/fakes.py) and a stub ASGI app in place of the gateway.

The real pair (vLLM + gateway via `python -m app serve`) is covered by the shared `stack` fixture.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest
import uvicorn

from app.errors import PortInUseError
from app.ports import free_port
from app.profiles import CPU_TINY
from app.supervisor import RestartPolicy, ServeConfig, serve
from tests.app.fakes import FAKE_VLLM_SCRIPT, write_script

FAST_RESTARTS = RestartPolicy(max_restarts=2, window_s=60, backoff_initial_s=0.05, backoff_max_s=0.1)


async def stub_app(scope: dict[str, Any], receive: Callable[[], Awaitable[Any]], send: Callable[..., Any]) -> None:
    """Minimal ASGI app: 200 "stub" for any HTTP request (lifespan unsupported -> uvicorn skips it)."""
    if scope["type"] != "http":
        raise RuntimeError("lifespan not supported")
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": b"stub"})


@pytest.fixture
def fake_vllm(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Path of the fake `python`; each start appends a line to the returned file."""
    starts = tmp_path / "starts"
    monkeypatch.setenv("FAKE_VLLM_STARTS", str(starts))
    monkeypatch.setenv("FAKE_VLLM_MODE", "ok")
    return starts


def make_config(tmp_path: Path, **overrides: Any) -> ServeConfig:
    fields: dict[str, Any] = {
        "profile": CPU_TINY,
        "model": str(tmp_path / "model"),
        "port": free_port(),
        "upstream_port": free_port(),
        "log_dir": tmp_path / "logs",
        "restart": FAST_RESTARTS,
        "stop_grace_s": 2.0,
        "python": str(write_script(tmp_path, "fake_python.py", FAKE_VLLM_SCRIPT)),
    }
    fields.update(overrides)
    return ServeConfig(**fields)


async def wait_until(predicate: Callable[[], Awaitable[bool]], timeout_s: float = 20.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while not await predicate():
        assert loop.time() < deadline, "condition not reached in time"
        await asyncio.sleep(0.05)


async def answers(url: str) -> bool:
    """GET url -> 200? Async: the gateway under test runs in this same event loop."""
    try:
        async with httpx.AsyncClient(timeout=2.0) as client:
            return (await client.get(url)).status_code == 200
    except httpx.HTTPError:
        return False


def count(starts: Path) -> int:
    return len(starts.read_text().splitlines()) if starts.exists() else 0


def fake_vllm_pids() -> list[int]:
    """Live fake vLLM processes started by this test process."""
    found = []
    for child in psutil.Process().children(recursive=True):
        try:
            if "fake_python.py" in " ".join(child.cmdline()) and child.status() != psutil.STATUS_ZOMBIE:
                found.append(child.pid)
        except psutil.NoSuchProcess:
            continue
    return found


def test_gateway_listens_while_vllm_loads_and_sigterm_stops_both(
    tmp_path: Path, fake_vllm: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAKE_VLLM_DELAY_S", "2")
    config = make_config(tmp_path)
    gateway = f"http://127.0.0.1:{config.port}/"
    vllm_health = f"{config.upstream_url}/health"

    async def scenario() -> int:
        task = asyncio.create_task(serve(config, app_factory=lambda _: stub_app))
        await wait_until(lambda: answers(gateway))
        assert not await answers(vllm_health), "the gateway should be up before vLLM is healthy"
        await wait_until(lambda: answers(vllm_health))
        assert fake_vllm_pids()
        os.kill(os.getpid(), signal.SIGTERM)  # handled by serve(), not fatal to pytest
        return await asyncio.wait_for(task, timeout=20)

    assert asyncio.run(scenario()) == 0
    assert fake_vllm_pids() == []
    assert not asyncio.run(answers(gateway))
    starts = fake_vllm.read_text()
    assert "--structured-outputs-config.backend guidance" in starts
    assert f"--port {config.upstream_port}" in starts
    assert "fake vllm start 1" in (tmp_path / "logs" / "vllm.log").read_text()
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # handlers restored


@pytest.fixture
def config(tmp_path: Path, fake_vllm: Path, monkeypatch: pytest.MonkeyPatch) -> ServeConfig:
    """The real gateway (no keys) in front of the fake vLLM, with a 3 s grace period on SIGTERM."""
    monkeypatch.delenv("MAZE_API_KEYS", raising=False)
    return make_config(tmp_path, stop_grace_s=3.0)


def test_sigterm_ends_running_streams_with_an_error_event_within_the_grace_period(config: ServeConfig) -> None:
    """The real gateway in front of a fake vLLM that streams for a minute; SIGTERM after 3 chunks."""
    gateway = f"http://127.0.0.1:{config.port}"
    body = {"model": "fake", "stream": True, "messages": [{"role": "user", "content": "hi"}]}

    async def scenario() -> tuple[list[str], float, int]:
        task = asyncio.create_task(serve(config))
        await wait_until(lambda: answers(f"{gateway}/ready"))
        lines: list[str] = []
        loop = asyncio.get_running_loop()
        async with (
            httpx.AsyncClient(timeout=30) as client,
            client.stream("POST", f"{gateway}/v1/chat/completions", json=body) as response,
        ):
            assert response.status_code == 200
            async for line in response.aiter_lines():
                if not line:
                    continue
                lines.append(line)
                if len(lines) == 3:
                    signalled = loop.time()
                    os.kill(os.getpid(), signal.SIGTERM)
        ended_after = loop.time() - signalled
        return lines, ended_after, await asyncio.wait_for(task, timeout=30)

    lines, ended_after, exit_code = asyncio.run(scenario())
    assert exit_code == 0
    assert ended_after < config.stop_grace_s, "the stream outlived the grace period"
    assert len(lines) > 3, "the stream should go on during the grace period"
    last = json.loads(lines[-1].removeprefix("data: "))
    assert "shutting down" in last["error"]["message"]
    assert fake_vllm_pids() == []


def test_sigterm_answers_a_waiting_non_streamed_request_with_503_within_the_grace_period(config: ServeConfig) -> None:
    """The fake vLLM takes a minute to answer; SIGTERM half a second into the request."""
    gateway = f"http://127.0.0.1:{config.port}"
    body = {"model": "fake", "messages": [{"role": "user", "content": "hi"}]}

    async def scenario() -> tuple[httpx.Response, float, int]:
        task = asyncio.create_task(serve(config))
        await wait_until(lambda: answers(f"{gateway}/ready"))
        loop = asyncio.get_running_loop()

        async def signal_soon() -> float:
            await asyncio.sleep(0.5)
            os.kill(os.getpid(), signal.SIGTERM)
            return loop.time()

        signaller = asyncio.create_task(signal_soon())
        async with httpx.AsyncClient(timeout=30) as client:
            response = await client.post(f"{gateway}/v1/chat/completions", json=body)
        ended_after = loop.time() - await signaller
        return response, ended_after, await asyncio.wait_for(task, timeout=30)

    response, ended_after, exit_code = asyncio.run(scenario())
    assert exit_code == 0
    assert ended_after < config.stop_grace_s, "the request outlived the grace period"
    assert response.status_code == 503, response.text
    assert response.headers["retry-after"]
    assert "shutting down" in response.json()["error"]["message"]
    assert fake_vllm_pids() == []


def test_vllm_crash_after_ready_is_restarted(tmp_path: Path, fake_vllm: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAKE_VLLM_MODE", "crash-after-ready")
    monkeypatch.setenv("FAKE_VLLM_CRASHES", "1")  # the second start stays up
    config = make_config(tmp_path)

    async def scenario() -> int:
        task = asyncio.create_task(serve(config, app_factory=lambda _: stub_app))

        async def restarted() -> bool:
            return count(fake_vllm) == 2 and await answers(f"{config.upstream_url}/health")

        await wait_until(restarted)
        assert await answers(f"http://127.0.0.1:{config.port}/")
        os.kill(os.getpid(), signal.SIGINT)
        return await asyncio.wait_for(task, timeout=20)

    assert asyncio.run(scenario()) == 0
    assert count(fake_vllm) == 2
    assert fake_vllm_pids() == []


def test_restarts_exhausted_stops_the_gateway_and_returns_1(
    tmp_path: Path, fake_vllm: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAKE_VLLM_MODE", "crash-after-ready")
    config = make_config(tmp_path)
    code = asyncio.run(asyncio.wait_for(serve(config, app_factory=lambda _: stub_app), timeout=60))
    assert code == 1
    assert count(fake_vllm) == FAST_RESTARTS.max_restarts + 1
    assert not asyncio.run(answers(f"http://127.0.0.1:{config.port}/"))
    assert fake_vllm_pids() == []


def test_first_start_failure_is_final(tmp_path: Path, fake_vllm: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAKE_VLLM_MODE", "fail")
    config = make_config(tmp_path)
    code = asyncio.run(asyncio.wait_for(serve(config, app_factory=lambda _: stub_app), timeout=30))
    assert code == 1
    assert count(fake_vllm) == 1  # a bad flag or model would fail the same way every time


def test_gateway_startup_failure_stops_vllm_and_returns_1(tmp_path: Path, fake_vllm: Path) -> None:
    async def failing_lifespan_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            await receive()
            await send({"type": "lifespan.startup.failed", "message": "no grammars found"})

    config = make_config(tmp_path)
    code = asyncio.run(asyncio.wait_for(serve(config, app_factory=lambda _: failing_lifespan_app), timeout=30))
    assert code == 1
    assert fake_vllm_pids() == []


def test_port_in_use_raises_before_starting_anything(tmp_path: Path, fake_vllm: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        config = make_config(tmp_path, port=taken.getsockname()[1])
        with pytest.raises(PortInUseError, match="not available"):
            asyncio.run(serve(config, app_factory=lambda _: stub_app))
    assert count(fake_vllm) == 0


def test_restart_backoff_doubles_up_to_the_cap() -> None:
    policy = RestartPolicy(backoff_initial_s=2, backoff_max_s=10)
    assert [policy.backoff_s(n) for n in (1, 2, 3, 4)] == [2, 4, 8, 10]


def test_uvicorn_still_has_the_signal_hook_we_override() -> None:
    # supervisor._GatewayServer disables uvicorn's signal capture by overriding this method; if a
    # uvicorn upgrade renames it, the override silently stops working.
    assert callable(getattr(uvicorn.Server, "capture_signals", None))
