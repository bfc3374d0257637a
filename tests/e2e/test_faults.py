"""Faults against the real stack: clients that hang up, and vLLM dying mid-stream."""

from __future__ import annotations

import re
import signal
import threading
import time

import httpx
import openai
import psutil
import pytest

from ..conftest import Stack

LONG = {
    "messages": [{"role": "user", "content": "Write a long essay."}],
    "max_tokens": 3000,
    "ignore_eos": True,
}


def vllm_metric(stack: Stack, name: str) -> float:
    """Sum of a metric's samples on vLLM's own /metrics."""
    text = httpx.get(f"{stack.upstream_url}/metrics", timeout=5).text
    values = re.findall(rf"^vllm:{name}\{{[^}}]*\}} ([0-9.e+-]+)$", text, re.MULTILINE)
    assert values, f"vLLM /metrics has no vllm:{name}"
    return sum(float(v) for v in values)


def running_requests(stack: Stack) -> float:
    return vllm_metric(stack, "num_requests_running")


def generated_tokens(stack: Stack) -> float:
    return vllm_metric(stack, "generation_tokens_total")


def wait_until(predicate, timeout: float, interval: float = 0.1) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()


def test_client_disconnect_aborts_the_generation(stack: Stack) -> None:
    body = {"model": stack.model, "stream": True, **LONG}
    with (
        httpx.Client(timeout=60) as client,
        client.stream("POST", f"{stack.base_url}/v1/chat/completions", json=body, headers=stack.headers) as response,
    ):
        assert response.status_code == 200
        lines = response.iter_lines()  # kept referenced: dropping it would close the stream early
        for _ in range(10):
            next(lines)
        assert running_requests(stack) == 1
    # The client is gone; vLLM must stop generating for it (3000 tokens would take ~20 s more).
    assert wait_until(lambda: running_requests(stack) == 0, timeout=2.0), "vLLM still generating for nobody"
    before = generated_tokens(stack)
    time.sleep(0.5)
    assert generated_tokens(stack) == before


@pytest.mark.parametrize("path", ["/v1/chat/completions", "/generate"])
def test_client_gone_before_a_non_streamed_answer_aborts_the_generation(stack: Stack, path: str) -> None:
    """No response bytes flow until the end, so only the gateway's disconnect watch can notice."""
    if path == "/generate":
        body = {"prompt": "Write a long essay.", "max_tokens": 3000, "language": "python", "temperature": 1.0}
    else:
        body = {"model": stack.model, **LONG}
    outcome: list[BaseException] = []

    def impatient_client() -> None:  # gives up after 8 s without a byte and closes the connection
        try:
            httpx.post(f"{stack.base_url}{path}", json=body, headers=stack.headers, timeout=httpx.Timeout(30, read=8))
        except httpx.HTTPError as exc:
            outcome.append(exc)

    thread = threading.Thread(target=impatient_client)
    thread.start()
    assert wait_until(lambda: running_requests(stack) == 1, timeout=8.0), "the generation never started"
    thread.join(timeout=30)
    assert outcome and isinstance(outcome[0], httpx.ReadTimeout)
    assert wait_until(lambda: running_requests(stack) == 0, timeout=2.0), "vLLM still generating for nobody"
    before = generated_tokens(stack)
    time.sleep(0.5)
    assert generated_tokens(stack) == before


def test_vllm_killed_mid_stream_errors_then_recovers(stack: Stack, openai_client: openai.OpenAI) -> None:
    (vllm,) = stack.vllm_processes()
    old_group = {p.pid for p in psutil.process_iter() if _pgid(p) == vllm.pid}
    assert len(old_group) >= 2, "expected vLLM's API server and its EngineCore in one process group"

    stream = openai_client.chat.completions.create(
        model=stack.model, stream=True, messages=LONG["messages"], max_tokens=LONG["max_tokens"],
        extra_body={"ignore_eos": True},
    )  # fmt: skip
    received = []
    with pytest.raises(openai.APIError) as info:
        for chunk in stream:
            received.append(chunk)
            if len(received) == 3:
                vllm.send_signal(signal.SIGKILL)
    assert len(received) >= 3
    assert "model server" in str(info.value.message)

    ready = httpx.get(f"{stack.base_url}/ready", headers=stack.headers, timeout=5)
    assert ready.status_code == 503 and "retry-after" in ready.headers

    # No orphan: the killed server's EngineCore must be gone too.
    assert wait_until(lambda: not any(psutil.pid_exists(pid) and _alive(pid) for pid in old_group), timeout=30)

    stack.wait_ready(deadline_s=180)
    (new_vllm,) = stack.vllm_processes()
    assert new_vllm.pid != vllm.pid
    completion = openai_client.chat.completions.create(
        model=stack.model,
        messages=LONG["messages"],
        max_tokens=8,
        extra_body={"guided_choice": ["up", "down"]},
    )
    assert completion.choices[0].message.content in {"up", "down"}


def _pgid(process: psutil.Process) -> int | None:
    try:
        import os

        return os.getpgid(process.pid)
    except (ProcessLookupError, psutil.Error):
        return None


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False
