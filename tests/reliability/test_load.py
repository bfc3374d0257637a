"""Load: many concurrent streams through the real gateway process, bounded concurrency, and no leak.

The gateway's own limits are measured against a fast fake upstream (``benchmarks.soak``), each in its
own process, so the numbers are the gateway's; grammar-constrained concurrency runs against the real
CPU vLLM. ``python -m benchmarks.soak`` runs the full 10,000-request soak.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import httpx

from benchmarks.soak import Pair, failure, gateway_pair, run_streams, soak

from ..conftest import Stack
from ..e2e.grammar_match import ARITH, assert_obeys

MIB = 1024 * 1024
#: The CI share of the 10,000-request soak.
SOAK_REQUESTS = 2_000


def test_256_concurrent_streams_all_complete_intact(pair: Pair) -> None:
    chunks = 8
    results = asyncio.run(
        run_streams(pair.gateway_url, pair.headers, 256, 256, chunks=chunks, extra={"fake_delay_s": 2.0})
    )
    problems = [(r.tag, failure(r, chunks)) for r in results if failure(r, chunks)]
    assert not problems, problems[:10]
    assert all(r.text.startswith(f"{r.tag}:0;") for r in results)
    # The streams really overlapped in the gateway (a serialising gateway would show 1 here).
    assert pair.fake_stats()["max_open"] >= 32


def test_gateway_rss_stays_flat_over_many_streams(pair: Pair) -> None:
    report = soak(pair, requests=SOAK_REQUESTS, concurrency=64, chunks=4, warmup=500)
    print("\n".join(report.lines()))
    assert report.lost == 0, report.failures
    # 2,000 requests: a leak of 4 KiB per request would add 8 MiB.
    assert report.rss_after - report.rss_before < 8 * MIB, report.lines()


def test_over_capacity_is_429_with_retry_after_and_admitted_streams_complete(
    tmp_path: Path,
) -> None:
    limits = {"MAZE_MAX_CONCURRENT_REQUESTS": "8", "MAZE_MAX_QUEUED_REQUESTS": "8", "MAZE_RETRY_AFTER_SECONDS": "3"}
    with gateway_pair(tmp_path / "gateway.log", limits) as small:
        chunks = 4
        results = asyncio.run(
            run_streams(small.gateway_url, small.headers, 32, 32, chunks=chunks, extra={"fake_delay_s": 3.0})
        )
        assert small.fake_stats()["max_open"] <= 8, "the gateway let more than MAZE_MAX_CONCURRENT_REQUESTS through"
    statuses = [r.status for r in results]
    assert set(statuses) <= {200, 429}, statuses
    assert statuses.count(200) >= 16, "8 running and 8 queued requests must all be served"
    assert statuses.count(429) >= 1
    for result in results:
        if result.status == 200:
            assert result.intact(chunks), failure(result, chunks)
        else:
            assert result.headers["retry-after"] == "3"
            error = json.loads(result.body)["error"]
            assert error["type"] == "rate_limit_error" and "capacity" in error["message"]
            assert "MAZE_MAX_CONCURRENT_REQUESTS" in error["message"]


async def _grammar_stream(client: httpx.AsyncClient, stack: Stack, seed: int) -> tuple[str, str | None, bool]:
    body = {
        "model": stack.model,
        "messages": [{"role": "user", "content": "Write an arithmetic expression."}],
        "max_tokens": 24,
        "seed": seed,
        "stream": True,
        "structured_outputs": {"grammar": ARITH},
    }
    text, finish, done = [], None, False
    async with client.stream("POST", "/v1/chat/completions", json=body) as response:
        assert response.status_code == 200, await response.aread()
        async for line in response.aiter_lines():
            if not line.startswith("data: "):
                continue
            if line == "data: [DONE]":
                done = True
                continue
            event = json.loads(line[len("data: ") :])
            assert "error" not in event, event
            choice = event["choices"][0]
            text.append(choice["delta"].get("content") or "")
            finish = choice.get("finish_reason") or finish
    return "".join(text), finish, done


def test_32_concurrent_grammar_streams_on_real_vllm_complete_and_obey(stack: Stack) -> None:
    async def run() -> list[tuple[str, str | None, bool]]:
        limits = httpx.Limits(max_connections=32)
        async with httpx.AsyncClient(
            base_url=stack.base_url, headers=stack.headers, limits=limits, timeout=300
        ) as client:
            return await asyncio.gather(*(_grammar_stream(client, stack, seed) for seed in range(32)))

    results = asyncio.run(run())
    assert len(results) == 32
    for text, finish, done in results:
        assert done, "a stream ended without data: [DONE]"
        assert finish in ("stop", "length")
        assert_obeys(ARITH, text, finish)
