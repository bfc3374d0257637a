"""Shared, session-scoped fixtures: the tiny model, and the real stack (vLLM + gateway) in front of it.

The stack is started exactly the way users start it, ``python -m app serve``, as a subprocess: the
supervisor, the CPU build of vLLM and the gateway are all real. It starts once per session (~30 s);
tests that kill vLLM wait for the supervisor to bring it back, so later tests find it healthy.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psutil
import pytest

from app.ports import free_port
from benchmarks.common import wait_http

API_KEY = "sk-maze-test-0123456789"
SERVED_MODEL = "maze-tiny"
#: vLLM's cold start is ~30-80 s here, several minutes on a loaded 2-core machine.
STACK_START_DEADLINE_S = 900.0


@dataclass
class Stack:
    """A running ``python -m app serve``: gateway URL, upstream (vLLM) URL and the supervisor process."""

    base_url: str
    upstream_url: str
    api_key: str
    model: str
    process: subprocess.Popen[bytes]
    log_path: Path

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_key}"}

    def vllm_processes(self) -> list[psutil.Process]:
        """vLLM's API server process(es) under the supervisor."""
        found = []
        for child in psutil.Process(self.process.pid).children(recursive=True):
            try:
                if "vllm.entrypoints" in " ".join(child.cmdline()):
                    found.append(child)
            except psutil.NoSuchProcess:
                continue
        return found

    def wait_ready(self, deadline_s: float = STACK_START_DEADLINE_S) -> None:
        """Block until the gateway's /ready says 200 (vLLM answers), or fail with the log tail."""
        try:
            wait_http(f"{self.base_url}/ready", deadline_s, self.process, headers=self.headers, interval_s=0.5)
        except RuntimeError:
            pytest.fail(f"app serve exited with {self.process.returncode}:\n{self.log_tail()}")
        except TimeoutError:
            pytest.fail(f"stack not ready after {deadline_s:.0f} s:\n{self.log_tail()}")

    def log_tail(self, lines: int = 60) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from app.tiny_model import build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("tiny-model"))


@contextlib.contextmanager
def serve_stack(tiny_model: Path, workdir: Path, extra_env: dict[str, str] | None = None) -> Iterator[Stack]:
    """Run ``python -m app serve`` on the tiny model until the block ends, then check nothing survives it."""
    port, upstream_port = free_port(), free_port()
    log_path = workdir / "serve.log"
    env = {
        **os.environ,
        "MAZE_API_KEYS": API_KEY,
        "MAZE_UPSTREAM_WAIT_SECONDS": "90",
        "PYTHONUNBUFFERED": "1",
        **(extra_env or {}),
    }
    argv = [
        sys.executable, "-m", "app", "serve",
        "--model", str(tiny_model),
        "--port", str(port),
        "--upstream-port", str(upstream_port),
        "--served-model-name", SERVED_MODEL,
    ]  # fmt: skip
    with open(log_path, "wb") as log:
        process = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=env)
    running = Stack(
        base_url=f"http://127.0.0.1:{port}",
        upstream_url=f"http://127.0.0.1:{upstream_port}",
        api_key=API_KEY,
        model=SERVED_MODEL,
        process=process,
        log_path=log_path,
    )
    try:
        running.wait_ready()
        yield running
    finally:
        tree = [process.pid]
        with contextlib.suppress(psutil.NoSuchProcess):
            tree += [p.pid for p in psutil.Process(process.pid).children(recursive=True)]
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
            pytest.fail("app serve did not stop within 60 s of SIGTERM")
        time.sleep(0.5)
        survivors = [pid for pid in tree if psutil.pid_exists(pid) and psutil.Process(pid).status() != "zombie"]
        assert not survivors, f"processes survived app serve's shutdown: {survivors}"


@pytest.fixture(scope="session")
def stack(tiny_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """The stack as users run it: the engine plugin (app/vllm_plugin) on."""
    with serve_stack(tiny_model, tmp_path_factory.mktemp("stack")) as running:
        yield running


@pytest.fixture(scope="session")
def openai_client(stack: Stack):  # type: ignore[no-untyped-def]
    """The stock openai SDK pointed at the gateway."""
    import openai

    return openai.OpenAI(base_url=f"{stack.base_url}/v1", api_key=stack.api_key, max_retries=0, timeout=120)
