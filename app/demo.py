"""`python -m app demo`: the whole chain on this machine, offline.

Starts `python -m app serve` exactly as a user would (tiny model, CPU vLLM, gateway with a throwaway
key), then runs the deployment smoke test (`app.smoke`) against it: one request per library grammar
through the stock openai SDK, each answer checked against its grammar with llguidance. Random
weights write nonsense, but it must be *grammatical* nonsense.
"""

from __future__ import annotations

import argparse
import os
import secrets
import signal
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from app.ports import free_port
from app.profiles import get_profile
from app.smoke import run_smoke


def cmd_demo(args: argparse.Namespace) -> int:
    """Start the stack, run the smoke test against it, stop the stack; 0 only if every output obeys."""
    key = "demo-" + secrets.token_hex(8)
    port, upstream_port = free_port(), free_port()
    log_dir = Path(tempfile.mkdtemp(prefix="maze-demo-"))
    argv = [sys.executable, "-m", "app", "serve", "--port", str(port), "--upstream-port", str(upstream_port),
            "--log-dir", str(log_dir)]  # fmt: skip
    serve_log = log_dir / "serve.log"
    print(f"starting: python {' '.join(argv[1:])}\n  logs: {serve_log}, {log_dir / 'vllm.log'}", flush=True)
    with open(serve_log, "wb") as log:
        process = subprocess.Popen(argv, env={**os.environ, "MAZE_API_KEYS": key}, stdout=log, stderr=subprocess.STDOUT)
    try:
        return run_smoke(
            f"http://127.0.0.1:{port}",
            key,
            max_tokens=args.max_tokens,
            ready_deadline_s=get_profile("cpu-tiny").startup_timeout_s,
            out=lambda line: print(line, flush=True),
            show_outputs=True,
        )
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()


def add_parser(subparsers: argparse._SubParsersAction[Any]) -> None:
    p = subparsers.add_parser("demo", help="run the whole chain offline and show constrained completions")
    p.add_argument("--max-tokens", type=int, default=64, help="tokens per completion (default: %(default)s)")
    p.set_defaults(run=cmd_demo)
