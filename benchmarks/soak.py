"""Soak: many streamed requests through the real gateway process, checked one by one, with its RSS.

``python -m benchmarks.soak [--requests 10000] [--concurrency 256] [--chunks 16]``

Starts a fast fake OpenAI upstream and ``python -m gateway`` in front of it, each as its own process,
then streams ``--requests`` chat completions through the gateway, ``--concurrency`` at a time. Every
stream must end with ``data: [DONE]`` and carry exactly the text the fake sent for that request (each
request's text is built from its own tag, so crossed or cut streams show up as corruption). The
gateway's resident memory is read after a warm-up and again at the end: a leak of even a few hundred
bytes per request shows as megabytes over 10,000 requests. Exit status 1 if any stream was lost or
corrupted. ``tests/reliability`` runs the same code with a smaller count.

The fake is a bare ASGI callable under uvicorn: no framework, one JSON parse per request, so it costs
little next to the gateway being measured. A request may carry ``fake_delay_s`` (held before the
first chunk, to keep many streams open at once); ``GET /fake/stats`` reports the most requests it
ever had open at one time.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psutil

from app.ports import free_port
from app.vllm_argv import VLLM_KEEPALIVE_SECONDS

from .common import wait_http

Scope = dict[str, Any]
MODEL = "fake-model"
KEY = "sk-soak-0123456789abcdef"


# --- the fake upstream -------------------------------------------------------------------------


def expected_text(tag: str, chunks: int) -> str:
    """What the fake streams for a request tagged ``tag``: the client compares against this."""
    return "".join(f"{tag}:{i};" for i in range(chunks))


@dataclass
class FakeStats:
    open_now: int = 0
    max_open: int = 0
    requests: int = 0


def make_fake_openai() -> Any:
    """An ASGI app answering like vLLM's OpenAI server: /health, /v1/models, chat and text completions."""
    stats = FakeStats()

    async def send_json(send: Any, status: int, payload: Any) -> None:
        body = json.dumps(payload).encode()
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    async def read_body(receive: Any) -> bytes:
        body, more = b"", True
        while more:
            message = await receive()
            body += message.get("body", b"")
            more = message.get("more_body", False)
        return body

    async def completion(request: dict[str, Any], send: Any) -> None:
        chat = "messages" in request
        tag = str(request["messages"][-1]["content"] if chat else request.get("prompt", ""))
        chunks = int(request.get("max_tokens") or 16)
        await asyncio.sleep(float(request.get("fake_delay_s", 0)))
        if not request.get("stream"):
            text = expected_text(tag, chunks)
            choice = {"index": 0, "finish_reason": "length"}
            choice.update({"message": {"role": "assistant", "content": text}} if chat else {"text": text})
            usage = {"prompt_tokens": 1, "completion_tokens": chunks, "total_tokens": chunks + 1}
            await send_json(send, 200, {"id": "cmpl-fake", "model": MODEL, "choices": [choice], "usage": usage})
            return
        headers = [(b"content-type", b"text/event-stream"), (b"cache-control", b"no-cache")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        for i in range(chunks):
            piece = f"{tag}:{i};"
            choice = {"index": 0, "finish_reason": "length" if i == chunks - 1 else None}
            choice.update({"delta": {"content": piece}} if chat else {"text": piece})
            event = {"id": "cmpl-fake", "object": "chat.completion.chunk", "model": MODEL, "choices": [choice]}
            await send({"type": "http.response.body", "body": b"data: " + json.dumps(event).encode() + b"\n\n",
                        "more_body": True})  # fmt: skip
            await asyncio.sleep(0)  # one event per write, as vLLM emits tokens
        await send({"type": "http.response.body", "body": b"data: [DONE]\n\n", "more_body": False})

    async def app(scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while (await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        path = scope["path"]
        if path == "/health":
            await send_json(send, 200, {})
        elif path == "/v1/models":
            await send_json(send, 200, {"object": "list", "data": [{"id": MODEL, "object": "model"}]})
        elif path == "/fake/stats":
            await send_json(send, 200, stats.__dict__)
        elif path in ("/v1/chat/completions", "/v1/completions"):
            request = json.loads(await read_body(receive))
            stats.requests += 1
            stats.open_now += 1
            stats.max_open = max(stats.max_open, stats.open_now)
            try:
                await completion(request, send)
            finally:
                stats.open_now -= 1
        else:
            await send_json(send, 404, {"error": {"message": f"no route {path}"}})

    return app


def serve_fake(port: int, keepalive_s: float = VLLM_KEEPALIVE_SECONDS) -> None:
    """Serve the fake with ``keepalive_s`` of HTTP keep-alive: by default what maze gives vLLM."""
    import uvicorn

    uvicorn.run(
        make_fake_openai(),
        host="127.0.0.1",
        port=port,
        log_level="warning",
        access_log=False,
        timeout_keep_alive=int(keepalive_s),
    )


# --- processes ---------------------------------------------------------------------------------


@dataclass
class Pair:
    """A fake upstream and a gateway in front of it, each its own process."""

    gateway_url: str
    upstream_url: str
    gateway: subprocess.Popen[bytes]
    upstream: subprocess.Popen[bytes]
    log_path: Path
    api_key: str = KEY

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_key}"}

    def gateway_rss(self) -> int:
        return psutil.Process(self.gateway.pid).memory_info().rss

    def fake_stats(self) -> dict[str, int]:
        return httpx.get(f"{self.upstream_url}/fake/stats", timeout=5).json()

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace")


@contextlib.contextmanager
def gateway_pair(
    log_path: Path, env: dict[str, str] | None = None, upstream_keepalive_s: float = VLLM_KEEPALIVE_SECONDS
) -> Iterator[Pair]:
    """Start the fake upstream and ``python -m gateway`` (its stdout and stderr to ``log_path``)."""
    upstream_port, gateway_port = free_port(), free_port()
    root = Path(__file__).resolve().parent.parent
    base_env = {**os.environ, "PYTHONPATH": str(root), "PYTHONUNBUFFERED": "1"}
    upstream = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "benchmarks.soak",
            "--serve-fake",
            str(upstream_port),
            "--upstream-keepalive",
            str(upstream_keepalive_s),
        ],
        cwd=root,
        env=base_env,
    )
    gateway_env = {
        **base_env,
        "MAZE_API_KEYS": KEY,
        "MAZE_SERVED_MODEL_NAME": MODEL,
        "MAZE_UPSTREAM_WAIT_SECONDS": "5",
        **(env or {}),
    }
    argv = [sys.executable, "-m", "gateway", "--upstream", f"http://127.0.0.1:{upstream_port}"]
    with open(log_path, "wb") as log:
        gateway = subprocess.Popen(
            [*argv, "--port", str(gateway_port)], cwd=root, env=gateway_env, stdout=log, stderr=subprocess.STDOUT
        )
    pair = Pair(f"http://127.0.0.1:{gateway_port}", f"http://127.0.0.1:{upstream_port}", gateway, upstream, log_path)
    try:
        wait_http(f"{pair.upstream_url}/health", 60, upstream, interval_s=0.1)
        wait_http(f"{pair.gateway_url}/health", 60, gateway, interval_s=0.1)
        yield pair
    finally:
        for process in (gateway, upstream):
            process.terminate()
        for process in (gateway, upstream):
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


# --- the load ----------------------------------------------------------------------------------


@dataclass
class StreamResult:
    tag: str
    status: int
    text: str = ""
    done: bool = False
    error: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    body: str = ""
    resent: bool = False

    def intact(self, chunks: int) -> bool:
        return self.status == 200 and self.done and self.error is None and self.text == expected_text(self.tag, chunks)


async def stream_one(client: httpx.AsyncClient, tag: str, chunks: int, extra: dict[str, Any]) -> StreamResult:
    """One stream; resent once if the connection fails before any response, as the openai SDK does
    (a pooled connection the server closed for idleness fails that way, the request unseen)."""
    result = await _stream_once(client, tag, chunks, extra)
    if result.status == 0 and result.error and "before the response" in result.error:
        result = await _stream_once(client, tag, chunks, extra)
        result.resent = True
    return result


async def _stream_once(client: httpx.AsyncClient, tag: str, chunks: int, extra: dict[str, Any]) -> StreamResult:
    body = {"messages": [{"role": "user", "content": tag}], "max_tokens": chunks, "stream": True, **extra}
    phase = "before the response"
    try:
        async with client.stream("POST", "/v1/chat/completions", json=body) as response:
            phase = "mid-stream"
            result = StreamResult(tag=tag, status=response.status_code, headers=dict(response.headers))
            if response.status_code != 200:
                result.body = (await response.aread()).decode(errors="replace")
                return result
            pieces = []
            async for line in response.aiter_lines():
                if not line.startswith("data: "):
                    continue
                data = line[len("data: ") :]
                if data == "[DONE]":
                    result.done = True
                    continue
                event = json.loads(data)
                if "error" in event:
                    result.error = event["error"].get("message", "error event")
                    continue
                pieces.append(event["choices"][0]["delta"].get("content") or "")
            result.text = "".join(pieces)
            return result
    except httpx.HTTPError as exc:
        return StreamResult(tag=tag, status=0, error=f"{type(exc).__name__} {phase}: {exc}")


async def run_streams(
    base_url: str,
    headers: dict[str, str],
    count: int,
    concurrency: int,
    *,
    chunks: int = 16,
    prefix: str = "r",
    extra: dict[str, Any] | None = None,
) -> list[StreamResult]:
    """``count`` streamed chat completions, ``concurrency`` at a time; results in request order."""
    # Idle connections are dropped after 2 s, before uvicorn's 5 s keep-alive timeout closes them from its
    # side: reusing a connection the server is closing at that moment fails with a read error.
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency, keepalive_expiry=2)
    semaphore = asyncio.Semaphore(concurrency)
    async with httpx.AsyncClient(base_url=base_url, headers=headers, limits=limits, timeout=120) as client:

        async def one(i: int) -> StreamResult:
            async with semaphore:
                return await stream_one(client, f"{prefix}{i}", chunks, extra or {})

        return await asyncio.gather(*(one(i) for i in range(count)))


def failure(result: StreamResult, chunks: int) -> str | None:
    """Why a stream does not count as intact (``None`` when it does)."""
    if result.intact(chunks):
        return None
    if result.error:
        return result.error[:80]
    if result.status != 200:
        return f"HTTP {result.status}"
    return "no [DONE]" if not result.done else "content differs"


@dataclass
class SoakReport:
    requests: int
    lost: int
    rss_before: int
    rss_after: int
    seconds: float
    failures: dict[str, int] = field(default_factory=dict)
    resent: int = 0

    def lines(self) -> list[str]:
        mib = 1024 * 1024
        return [
            f"requests:     {self.requests:,} streamed, {self.lost} lost or corrupted",
            f"gateway RSS:  {self.rss_before / mib:.1f} MiB after warm-up -> {self.rss_after / mib:.1f} MiB "
            f"after the run ({(self.rss_after - self.rss_before) / mib:+.1f} MiB)",
            f"wall time:    {self.seconds:.1f} s ({self.requests / self.seconds:.0f} streams/s)",
            f"resent:       {self.resent} (connection closed before any response, sent again once)",
            *(f"  {count} x {reason}" for reason, count in sorted(self.failures.items())),
        ]


def soak(pair: Pair, requests: int, concurrency: int, chunks: int = 16, warmup: int = 500) -> SoakReport:
    """Warm up, read RSS, run ``requests`` streams in rounds, read RSS again."""
    asyncio.run(run_streams(pair.gateway_url, pair.headers, warmup, concurrency, chunks=chunks, prefix="w"))
    rss_before = pair.gateway_rss()
    started = time.perf_counter()
    failures: dict[str, int] = {}
    resent = 0
    done = 0
    while done < requests:
        batch = min(2_000, requests - done)  # rounds keep the client's own memory bounded
        results = asyncio.run(
            run_streams(pair.gateway_url, pair.headers, batch, concurrency, chunks=chunks, prefix=f"s{done}-")
        )
        resent += sum(r.resent for r in results)
        for result in results:
            if (reason := failure(result, chunks)) is not None:
                failures[reason] = failures.get(reason, 0) + 1
        done += batch
    lost = sum(failures.values())
    elapsed = time.perf_counter() - started
    return SoakReport(requests, lost, rss_before, pair.gateway_rss(), elapsed, failures, resent)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.soak", description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=10_000)
    parser.add_argument("--concurrency", type=int, default=256)
    parser.add_argument("--chunks", type=int, default=16, help="content chunks per stream")
    parser.add_argument("--warmup", type=int, default=500)
    parser.add_argument("--log", type=Path, help="keep the gateway's log in this file")
    parser.add_argument(
        "--upstream-keepalive",
        type=float,
        default=VLLM_KEEPALIVE_SECONDS,
        help="the fake upstream's HTTP keep-alive in seconds (default: what maze gives vLLM; "
        "5 is vLLM's own default, as an upstream maze did not launch has)",
    )
    parser.add_argument("--serve-fake", type=int, metavar="PORT", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve_fake:
        serve_fake(args.serve_fake, args.upstream_keepalive)
        return 0
    with contextlib.ExitStack() as stack:
        log_path = args.log or Path(stack.enter_context(tempfile.TemporaryDirectory())) / "gateway.log"
        limits = {"MAZE_MAX_CONCURRENT_REQUESTS": "1024"}
        pair = stack.enter_context(gateway_pair(log_path, limits, args.upstream_keepalive))
        report = soak(pair, args.requests, args.concurrency, args.chunks, args.warmup)
    print("\n".join(report.lines()))
    return 1 if report.lost else 0


if __name__ == "__main__":
    sys.exit(main())
