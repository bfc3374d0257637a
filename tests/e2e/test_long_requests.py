"""Long non-streamed generations through a gateway that keeps them alive (Modal's 150 s limit).

A second gateway is started in front of the session's vLLM with the keep-alive cut to 1 s, so a
few hundred tokens on CPU are "long": its answer must start before vLLM has finished, and still
read as ordinary JSON for raw HTTP clients and the openai SDK, with the constraint applied.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator

import httpx
import openai
import pytest

from app.ports import free_port
from benchmarks.common import wait_http

from ..conftest import Stack
from .grammar_match import ARITH, assert_obeys


@pytest.fixture(scope="module")
def kept_alive_gateway(stack: Stack) -> Iterator[str]:
    port = free_port()
    env = {**os.environ, "MAZE_KEEPALIVE_AFTER_SECONDS": "1", "MAZE_KEEPALIVE_INTERVAL_SECONDS": "0.5"}
    argv = [sys.executable, "-m", "gateway", "--upstream", stack.upstream_url, "--port", str(port)]
    process = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base_url = f"http://127.0.0.1:{port}"
    try:
        try:
            wait_http(f"{base_url}/ready", 60, process)
        except (RuntimeError, TimeoutError):
            pytest.fail("the second gateway did not become ready")
        yield base_url
    finally:
        process.terminate()
        process.wait(timeout=30)


def test_slow_generate_starts_early_and_ends_as_json(kept_alive_gateway: str) -> None:
    body = {"prompt": "Sum some numbers.", "grammar": ARITH, "max_tokens": 400, "temperature": 1.0}
    started = time.monotonic()
    with httpx.stream("POST", f"{kept_alive_gateway}/generate", json=body, timeout=120) as response:
        assert response.status_code == 200
        chunks = response.iter_raw()
        first = next(chunks)
        first_byte_s = time.monotonic() - started
        rest = b"".join(chunks)
    total_s = time.monotonic() - started
    assert response.headers.get("x-maze-deferred") == "1"
    assert first.strip() == b"" and first_byte_s < total_s  # a heartbeat came before the answer
    result = httpx.Response(200, content=first + rest).json()
    assert_obeys(ARITH, result["code"], result["metadata"]["finish_reason"])


def test_openai_sdk_reads_a_kept_alive_answer(kept_alive_gateway: str) -> None:
    client = openai.OpenAI(base_url=f"{kept_alive_gateway}/v1", api_key="unused", max_retries=0, timeout=120)
    model = client.models.list().data[0].id
    completion = client.chat.completions.create(
        model=model,
        messages=[{"role": "user", "content": "Sum some numbers."}],
        max_tokens=400,
        extra_body={"structured_outputs": {"grammar": ARITH}},
    )
    choice = completion.choices[0]
    assert completion.usage is not None and completion.usage.completion_tokens > 0
    assert_obeys(ARITH, choice.message.content or "", choice.finish_reason)
