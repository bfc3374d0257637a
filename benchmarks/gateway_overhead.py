"""Part 1: what the gateway adds, side by side with a direct call and with LiteLLM's proxy.

Three targets answer the same requests in one run: the fake OpenAI upstream itself (``direct``), our
gateway in front of it (``python -m gateway --upstream``), and LiteLLM's proxy in front of it
(``openai/`` provider). Rounds alternate between the targets (the order rotates every round), so a
burst of load on this shared machine hits all three alike instead of skewing one.

Placement on 2 cores: the load generator and the fake upstream share core 0; the gateway or LiteLLM
runs alone on core 1 (``taskset -c 1``). Only one target is driven at a time.

Per target and round: ``latency_requests`` non-streaming requests one at a time (latency at
concurrency 1), ``stream_requests`` 64-chunk streams one at a time (time to first chunk, total time,
and integrity: every chunk's content in order, the final ``finish_reason``, ``data: [DONE]``), and a
closed loop at concurrency 32 for ``throughput_seconds`` (requests/s). The proxies' CPU time per
request (from ``/proc``) is recorded too: on a busy machine it moves less than wall-clock latency.
"""

from __future__ import annotations

import json
import os
import statistics
import tempfile
import time
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import uvloop

from app.ports import free_port

from . import litellm_ref, loadgen
from .common import (
    Child,
    Log,
    machine,
    machine_line,
    md_table,
    part_results,
    percentile,
    pinned,
    python,
    start,
    summary_ms,
    wait_http,
    write_result,
)
from .fake_upstream import MODEL, chunk_texts

HOST = "127.0.0.1"
LOADGEN_CORE = 0
PROXY_CORE = 1
#: Both proxies check a bearer key, as they would in production (LiteLLM refuses to start without one).
API_KEY = "sk-bench-0123456789abcdef"
GOALS = {"added_p50_ms": 0.3, "added_p99_ms": 1.0, "throughput_ratio": 0.95, "litellm_over_gateway": 10.0}


@dataclass(frozen=True)
class Config:
    rounds: int = 5
    latency_requests: int = 400
    stream_requests: int = 60
    throughput_seconds: float = 2.0
    concurrency: int = 32
    chunks: int = 64
    warmup_requests: int = 200
    #: Time box per phase, so a slow target (LiteLLM; any target on a loaded machine) sends fewer
    #: requests instead of stretching the run.
    phase_seconds: float = 4.0
    litellm: bool = True


QUICK = Config(
    rounds=1,
    latency_requests=20,
    stream_requests=3,
    throughput_seconds=0.3,
    warmup_requests=10,
    phase_seconds=60.0,
    litellm=False,
)


@dataclass
class Target:
    name: str
    port: int
    child: Child | None
    latency: list[float]
    ttfc: list[float]
    stream_total: list[float]
    throughput: list[float]
    cpu_seconds: float = 0.0
    cpu_requests: int = 0
    stream_ok: int = 0
    stream_failed: int = 0
    errors: int = 0
    first_failure: str = ""


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def stream_problem(body: bytes, expected: list[str]) -> str:
    """Why a streamed body is not the complete stream, or ``""`` when it is."""
    events = [e for e in body.split(b"\n\n") if e.strip()]
    if not events or events[-1].strip() != b"data: [DONE]":
        return "no data: [DONE] at the end"
    texts: list[str] = []
    finish = None
    for event in events[:-1]:
        if not event.startswith(b"data: "):
            return f"not an SSE data event: {event[:80]!r}"
        payload = json.loads(event[6:])
        if "error" in payload:
            return f"error event: {payload['error']}"
        for choice in payload.get("choices") or []:
            content = (choice.get("delta") or {}).get("content")
            if content:
                texts.append(content)
            finish = choice.get("finish_reason") or finish
    if "".join(texts) != "".join(expected):
        return f"content differs: {''.join(texts)[:60]!r}"
    if len(texts) != len(expected):
        return f"{len(texts)} content chunks instead of {len(expected)}"
    if finish != "stop":
        return f"finish_reason {finish!r}"
    return ""


def completion_problem(body: bytes, expected: str) -> str:
    try:
        content = json.loads(body)["choices"][0]["message"]["content"]
    except (ValueError, KeyError, IndexError, TypeError) as exc:
        return f"not a chat completion: {exc!r} {body[:80]!r}"
    return "" if content == expected else f"content differs: {content[:60]!r}"


def _requests(port: int) -> tuple[bytes, bytes]:
    messages = [{"role": "user", "content": "Write a function that adds two numbers."}]
    auth = {"Authorization": f"Bearer {API_KEY}"}
    plain = loadgen.post_json(HOST, port, "/v1/chat/completions", {"model": MODEL, "messages": messages}, auth)
    streamed = loadgen.post_json(
        HOST, port, "/v1/chat/completions", {"model": MODEL, "messages": messages, "stream": True}, auth
    )
    return plain, streamed


async def _warm(target: Target, config: Config, expected: list[str]) -> None:
    plain, streamed = _requests(target.port)
    results = await loadgen.sequential(HOST, target.port, plain, config.warmup_requests, True, config.phase_seconds)
    problem = completion_problem(results[0].body, "".join(expected))
    if results[0].status != 200 or problem:
        raise RuntimeError(f"{target.name} answers wrongly: {results[0].status} {problem}")
    for result in await loadgen.sequential(HOST, target.port, streamed, 3, keep_body=True):
        problem = stream_problem(result.body, expected)
        if problem:
            raise RuntimeError(f"{target.name} streams wrongly: {problem}")
    await loadgen.throughput(HOST, target.port, plain, config.concurrency, min(0.5, config.throughput_seconds))


async def _round(target: Target, config: Config, expected: list[str]) -> None:
    plain, streamed = _requests(target.port)
    pid = target.child.process.pid if target.child else None
    before = cpu_seconds(pid) if pid else 0.0
    results = await loadgen.sequential(HOST, target.port, plain, config.latency_requests, False, config.phase_seconds)
    if pid:
        target.cpu_seconds += cpu_seconds(pid) - before
        target.cpu_requests += len(results)
    target.latency += [r.total_s for r in results]
    target.errors += sum(r.status != 200 for r in results)

    streams = await loadgen.sequential(HOST, target.port, streamed, config.stream_requests, True, config.phase_seconds)
    for result in streams:
        target.ttfc.append(result.first_byte_s)
        target.stream_total.append(result.total_s)
        problem = "" if result.status == 200 else f"status {result.status}"
        problem = problem or stream_problem(result.body, expected)
        if problem:
            target.stream_failed += 1
            target.first_failure = target.first_failure or problem
        else:
            target.stream_ok += 1

    done, errors, elapsed = await loadgen.throughput(
        HOST, target.port, plain, config.concurrency, config.throughput_seconds
    )
    target.throughput.append(done / elapsed)
    target.errors += errors


async def _measure(targets: list[Target], config: Config, log: Log) -> None:
    expected = chunk_texts(config.chunks)
    for target in targets:
        await _warm(target, config, expected)
    for index in range(config.rounds):
        order = targets[index % len(targets) :] + targets[: index % len(targets)]
        for target in order:
            await _round(target, config, expected)
        log(f"  round {index + 1}/{config.rounds}: " + ", ".join(
            f"{t.name} p50 {percentile(t.latency, 50) * 1e3:.2f} ms" for t in targets
        ))  # fmt: skip


def _target_result(target: Target) -> dict[str, Any]:
    return {
        "latency_c1": summary_ms(target.latency),
        "throughput_rps": statistics.median(target.throughput),
        "throughput_rounds_rps": [round(v, 1) for v in target.throughput],
        "stream_ttfc": summary_ms(target.ttfc),
        "stream_total": summary_ms(target.stream_total),
        "stream_integrity": {
            "ok": target.stream_ok,
            "failed": target.stream_failed,
            "first_failure": target.first_failure,
        },
        "cpu_ms_per_request": (target.cpu_seconds / target.cpu_requests * 1e3) if target.cpu_requests else None,
        "errors": target.errors,
    }


def _analyse(results: dict[str, dict[str, Any]]) -> tuple[dict[str, Any], dict[str, Any]]:
    direct = results["direct"]
    added: dict[str, Any] = {}
    for name, r in results.items():
        if name == "direct":
            continue
        added[name] = {
            "p50_ms": r["latency_c1"]["p50_ms"] - direct["latency_c1"]["p50_ms"],
            "p99_ms": r["latency_c1"]["p99_ms"] - direct["latency_c1"]["p99_ms"],
            "throughput_ratio": r["throughput_rps"] / direct["throughput_rps"],
            "ttfc_p50_ms": r["stream_ttfc"]["p50_ms"] - direct["stream_ttfc"]["p50_ms"],
            "ttfc_p99_ms": r["stream_ttfc"]["p99_ms"] - direct["stream_ttfc"]["p99_ms"],
            "stream_total_p50_ms": r["stream_total"]["p50_ms"] - direct["stream_total"]["p50_ms"],
        }
    gw = added["gateway"]
    goals: dict[str, Any] = {
        "gateway added latency p50 <= 0.3 ms": {"value": gw["p50_ms"], "met": gw["p50_ms"] <= GOALS["added_p50_ms"]},
        "gateway added latency p99 <= 1 ms": {"value": gw["p99_ms"], "met": gw["p99_ms"] <= GOALS["added_p99_ms"]},
        "gateway throughput >= 0.95x direct": {
            "value": gw["throughput_ratio"],
            "met": gw["throughput_ratio"] >= GOALS["throughput_ratio"],
        },
    }
    if "litellm" in added:
        ratio = added["litellm"]["p50_ms"] / max(gw["p50_ms"], 1e-6)
        goals["gateway adds >= 10x less latency than LiteLLM (p50)"] = {
            "value": ratio,
            "met": ratio >= GOALS["litellm_over_gateway"],
        }
    return added, goals


def markdown(data: dict[str, Any]) -> str:
    targets = data["targets"]
    rows = []
    for name, r in targets.items():
        add = data["added"].get(name)
        cpu = r["cpu_ms_per_request"]
        rows.append([
            f"`{name}`",
            f"{r['latency_c1']['p50_ms']:.3f} / {r['latency_c1']['p99_ms']:.3f}",
            "—" if add is None else f"{add['p50_ms']:+.3f} / {add['p99_ms']:+.3f}",
            f"{r['throughput_rps']:,.0f}" + ("" if add is None else f" ({add['throughput_ratio']:.2f}x)"),
            f"{r['stream_ttfc']['p50_ms']:.2f} / {r['stream_ttfc']['p99_ms']:.2f}",
            f"{r['stream_total']['p50_ms']:.2f} / {r['stream_total']['p99_ms']:.2f}",
            f"{r['stream_integrity']['ok']}/{r['stream_integrity']['ok'] + r['stream_integrity']['failed']}",
            "—" if cpu is None else f"{cpu:.3f}",
        ])  # fmt: skip
    table = md_table(
        [
            "target",
            "latency c=1 p50 / p99 (ms)",
            "added p50 / p99 (ms)",
            f"req/s at c={data['config']['concurrency']}",
            "stream TTFC p50 / p99 (ms)",
            f"{data['config']['chunks']}-chunk stream total p50 / p99 (ms)",
            "streams intact",
            "proxy CPU ms / request",
        ],
        rows,
    )
    goal_rows = [[goal, f"{g['value']:.3f}", "met" if g["met"] else "**missed**"] for goal, g in data["goals"].items()]
    return (
        "### Gateway overhead (fake upstream, same run, alternating rounds)\n\n"
        f"{table}\n\n{md_table(['goal', 'measured', 'verdict'], goal_rows)}\n\n"
        f"Machine: {machine_line(data['machine'])}. Versions: "
        + ", ".join(f"{k} {v}" for k, v in data["versions"].items())
        + f". {data['config']['rounds']} rounds; per round and target at most "
        f"{data['config']['latency_requests']} requests and {data['config']['stream_requests']} streams, "
        f"{data['config']['phase_seconds']:g} s each, then {data['config']['throughput_seconds']:g} s at "
        f"c={data['config']['concurrency']}; the load generator and the fake upstream on core 0, the proxy "
        "alone on core 1.\n"
    )


def run(config: Config = Config(), out_dir: Path | None = None, log: Log = print) -> dict[str, Any]:
    work = Path(tempfile.mkdtemp(prefix="maze-bench-gateway-"))
    fake_port, gateway_port = free_port(), free_port()
    upstream = f"http://{HOST}:{fake_port}"
    children: list[Child] = []
    info = machine()
    try:
        fake_argv = [python(), "-m", "benchmarks.fake_upstream", "--port", str(fake_port)]
        fake_argv += ["--chunks", str(config.chunks)]
        fake = start("fake", pinned(fake_argv, LOADGEN_CORE), work / "fake.log")
        children.append(fake)
        gateway = start(
            "gateway",
            pinned([python(), "-m", "gateway", "--upstream", upstream, "--port", str(gateway_port)], PROXY_CORE),
            work / "gateway.log",
            env={"MAZE_API_KEYS": API_KEY, "MAZE_SERVED_MODEL_NAME": MODEL},
        )
        children.append(gateway)
        wait_http(f"{upstream}/health", 30, fake.process)
        wait_http(f"http://{HOST}:{gateway_port}/health", 60, gateway.process)
        targets = [
            Target("direct", fake_port, None, [], [], [], []),
            Target("gateway", gateway_port, gateway, [], [], [], []),
        ]
        versions = {name: metadata.version(name) for name in ("fastapi", "uvicorn", "httpx")}
        if config.litellm:
            litellm_port = free_port()
            proxy = litellm_ref.start_proxy(litellm_port, fake_port, MODEL, API_KEY, work, PROXY_CORE)
            children.append(proxy)
            wait_http(f"http://{HOST}:{litellm_port}/health/liveliness", 180, proxy.process)
            targets.append(Target("litellm", litellm_port, proxy, [], [], [], []))
            versions["litellm"] = litellm_ref.version()
        log(f"gateway overhead: {', '.join(t.name for t in targets)}; {config.rounds} rounds")
        affinity = os.sched_getaffinity(0)
        try:
            if (os.cpu_count() or 1) > PROXY_CORE:
                os.sched_setaffinity(0, {LOADGEN_CORE})
            started = time.perf_counter()
            uvloop.run(_measure(targets, config, log))
            elapsed = time.perf_counter() - started
        finally:
            os.sched_setaffinity(0, affinity)
        results = {t.name: _target_result(t) for t in targets}
        added, goals = _analyse(results)
        data = part_results(
            "gateway_overhead",
            info,
            config,
            versions=versions,
            seconds=round(elapsed, 1),
            targets=results,
            added=added,
            goals=goals,
        )
    except BaseException:
        for child in children:
            log(f"--- {child.name} log tail ---\n{child.tail()}")
        raise
    finally:
        for child in reversed(children):
            child.stop()
    return write_result("gateway", data, markdown, out_dir)
