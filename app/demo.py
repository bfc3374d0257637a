"""`python -m app demo`: the whole chain on this machine, offline, in about a minute.

Starts `python -m app serve` exactly as a user would (tiny model, CPU vLLM, gateway with a throwaway
key), sends one request per library grammar through the stock openai SDK, and checks every answer
against its grammar with llguidance: the whole grammar when the model stopped, a valid prefix when
`max_tokens` cut it. Random weights write nonsense, but it must be *grammatical* nonsense.
"""

from __future__ import annotations

import argparse
import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from app.profiles import get_profile

PROMPTS = {
    "python": "Write a Python function that merges two sorted lists.",
    "json": "Describe a user account as JSON.",
}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_ready(base_url: str, key: str, process: subprocess.Popen[bytes], deadline_s: float) -> None:
    started = time.monotonic()
    last_report = 0.0
    while time.monotonic() - started < deadline_s:
        if process.poll() is not None:
            raise RuntimeError(f"`python -m app serve` exited with code {process.returncode}")
        try:
            response = httpx.get(f"{base_url}/ready", headers={"Authorization": f"Bearer {key}"}, timeout=2)
            if response.status_code == 200:
                print(f"ready after {time.monotonic() - started:.0f} s", flush=True)
                return
        except httpx.HTTPError:
            pass
        if time.monotonic() - last_report >= 10:
            last_report = time.monotonic()
            print(f"  waiting for vLLM to load ({time.monotonic() - started:.0f} s)...", flush=True)
        time.sleep(1)
    raise RuntimeError(f"the stack was not ready within {deadline_s:.0f} s")


def _run_requests(base_url: str, key: str, max_tokens: int) -> int:
    import openai

    import grammars
    from grammars.check import output_verdict

    client = openai.OpenAI(base_url=f"{base_url}/v1", api_key=key, max_retries=0, timeout=300)
    model = client.models.list().data[0].id
    failures = 0
    for info in grammars.list_grammars():
        prompt = PROMPTS.get(info.name, f"Write a short {info.language} program.")
        started = time.perf_counter()
        completion = client.chat.completions.create(
            model=model,
            messages=[{"role": "user", "content": prompt}],
            max_tokens=max_tokens,
            temperature=0.8,
            seed=7,
            extra_body={"language": info.name},
        )
        elapsed = time.perf_counter() - started
        choice = completion.choices[0]
        text = choice.message.content or ""
        verdict = output_verdict(grammars.load(info.name), text, finished=choice.finish_reason == "stop")
        ok = verdict in ("complete", "valid prefix")
        failures += not ok
        tokens = completion.usage.completion_tokens if completion.usage else 0
        print(f"\n== {info.name}: {info.description}")
        print(f"   {tokens} tokens in {elapsed:.2f} s, finish_reason={choice.finish_reason}, grammar check: {verdict}")
        print("   " + "\n   ".join(text.splitlines()[:12] or [repr(text)]))
    return failures


def cmd_demo(args: argparse.Namespace) -> int:
    """Start the stack, show one constrained completion per grammar, stop the stack."""
    key = "demo-" + secrets.token_hex(8)
    port, upstream_port = _free_port(), _free_port()
    log_dir = Path(tempfile.mkdtemp(prefix="maze-demo-"))
    base_url = f"http://127.0.0.1:{port}"
    argv = [sys.executable, "-m", "app", "serve", "--port", str(port), "--upstream-port", str(upstream_port),
            "--log-dir", str(log_dir)]  # fmt: skip
    print(f"starting: {' '.join(argv[1:])}  (vLLM log: {log_dir / 'vllm.log'})", flush=True)
    process = subprocess.Popen(argv, env={**os.environ, "MAZE_API_KEYS": key})
    try:
        _wait_ready(base_url, key, process, get_profile("cpu-tiny").startup_timeout_s)
        failures = _run_requests(base_url, key, args.max_tokens)
    except RuntimeError as exc:
        print(f"error: {exc}; see {log_dir / 'vllm.log'}", file=sys.stderr)
        return 1
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
    if failures:
        print(f"\n{failures} output(s) did NOT obey their grammar", file=sys.stderr)
        return 1
    print("\nevery output obeyed its grammar")
    return 0


def add_parser(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = subparsers.add_parser("demo", help="run the whole chain offline and show constrained completions")
    p.add_argument("--max-tokens", type=int, default=64, help="tokens per completion (default: %(default)s)")
    p.set_defaults(run=cmd_demo)
