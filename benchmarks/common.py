"""Helpers every benchmark shares: percentiles, the machine description, and writing results.

A part is a module with ``run(config, out_dir, log, ...)`` that measures, builds its results with
:func:`part_results` (which part, on what machine, with which configuration) and hands them to
:func:`write_result` with the function that renders them as Markdown.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import platform
import socket
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, cast

#: Where results land; committed, so BENCHMARKS.md can quote and link them.
RESULTS_DIR = Path(__file__).resolve().parent / "results"

#: Where a part reports progress: ``print`` from the command line, a no-op in tests.
Log = Callable[[str], None]


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0-100) by nearest rank on sorted data; NaN for no data."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def summary_ms(seconds: Sequence[float]) -> dict[str, float]:
    """p50 / p99 / max of durations given in seconds, in milliseconds."""
    return {
        "n": len(seconds),
        "p50_ms": percentile(seconds, 50) * 1e3,
        "p99_ms": percentile(seconds, 99) * 1e3,
        "max_ms": max(seconds) * 1e3 if seconds else float("nan"),
    }


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def load_average() -> list[float]:
    """The 1, 5 and 15 minute load averages, rounded to 0.01."""
    return [round(load, 2) for load in os.getloadavg()]


def machine(note: str = "") -> dict[str, Any]:
    """What the numbers were measured on: CPU, cores, load average, versions, time."""
    return {
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "loadavg_1_5_15": load_average(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "utc": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "note": note,
    }


def machine_line(info: dict[str, Any]) -> str:
    load = ", ".join(f"{v:.2f}" for v in info["loadavg_1_5_15"])
    return f"{info['cpu']}, {info['cores']} cores, load average {load} (1/5/15 min), {info['utc']}"


def part_results(benchmark: str, info: dict[str, Any], config: Any, **measured: Any) -> dict[str, Any]:
    """A part's results: its name, the machine (``info`` from :func:`machine` at the start, and the load
    average now, at the end: a run that others' work slowed says so), its configuration, then ``measured``."""
    return {
        "benchmark": benchmark,
        "machine": {**info, "loadavg_after": load_average()},
        "config": asdict(config),
        **measured,
    }


def write_result(
    name: str, data: dict[str, Any], markdown: Callable[[dict[str, Any]], str], out_dir: Path | None = None
) -> dict[str, Any]:
    """Write ``NAME.json`` (``data``) and ``NAME.md`` (``markdown(data)``) into ``out_dir`` (default
    :data:`RESULTS_DIR`); returns ``data``."""
    text = markdown(data)
    out_dir = RESULTS_DIR if out_dir is None else out_dir
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / f"{name}.json").write_text(json.dumps(data, indent=2, sort_keys=False) + "\n")
    (out_dir / f"{name}.md").write_text(text.rstrip() + "\n")
    return data


def md_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A GitHub Markdown table."""
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def wait_http(
    url: str,
    deadline_s: float,
    process: subprocess.Popen[bytes] | None = None,
    *,
    headers: dict[str, str] | None = None,
    interval_s: float = 0.2,
) -> float:
    """Poll ``url`` until it answers 200 and return the seconds it took; fail early if ``process`` exits."""
    import httpx

    from client._ready import Poll

    def answers() -> bool:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"process for {url} exited with {process.returncode}")
        try:
            return httpx.get(url, headers=headers, timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    def timed_out(elapsed: float, last: bool) -> TimeoutError:
        return TimeoutError(f"{url} did not answer 200 within {deadline_s:.0f} s")

    return Poll(lambda ok: ok, deadline_s, interval_s, timed_out).run(answers)


def without_delay(transport: asyncio.BaseTransport) -> asyncio.Transport:
    """A new connection's transport, with Nagle's algorithm off: the fake upstream's small SSE chunks and
    the load generator's requests go out when written, not batched behind a delayed ACK."""
    sock = transport.get_extra_info("socket")
    if sock is not None:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return cast(asyncio.Transport, transport)  # uvloop's transports are not subclasses


def pinned(argv: list[str], core: int | None) -> list[str]:
    """``argv`` run under ``taskset -c CORE`` when a core is given and taskset exists."""
    if core is None or not Path("/usr/bin/taskset").exists() or (os.cpu_count() or 1) <= core:
        return argv
    return ["taskset", "-c", str(core), *argv]


@dataclass
class Child:
    """A child process we started, with its log, stopped by its own pid."""

    name: str
    process: subprocess.Popen[bytes]
    log: Path

    def stop(self, grace_s: float = 10.0) -> None:
        if self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=grace_s)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


def start(name: str, argv: list[str], log: Path, env: dict[str, str] | None = None) -> Child:
    with open(log, "wb") as out:
        process = subprocess.Popen(
            argv, stdout=out, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})}, stdin=subprocess.DEVNULL
        )
    return Child(name, process, log)


def python() -> str:
    return sys.executable
