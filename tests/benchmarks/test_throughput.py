"""The throughput benchmark: its arithmetic, its command lines, and one tiny run against real CPU vLLM."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

import modal_deploy
from app.profiles import get_profile
from app.sizing import price_per_hour
from benchmarks import __main__ as cli
from benchmarks import throughput
from benchmarks.decoding import Run
from tests.conftest import Stack


def test_a_row_reports_rate_latency_percentiles_and_cost() -> None:
    run = Run(tokens=7200, seconds=2.0, ttft=[0.1, 0.2, 0.3], per_request=[2400] * 3, itl=[0.01] * 98 + [0.5, 0.9])
    r = throughput.row("python", 3, run, usd_per_hour=3.6)
    assert r["tokens_per_s"] == 3600.0
    assert (r["ttft_p50_ms"], r["ttft_p99_ms"]) == (200.0, 300.0)
    assert (r["itl_p50_ms"], r["itl_p99_ms"]) == (10.0, 500.0)  # nearest rank: the 99th of 100 gaps
    assert r["usd_per_million"] == pytest.approx(3.6 / (3600 * 3600) * 1e6)  # $3.60/h at 3,600 tok/s = $0.28
    assert throughput.row("none", 1, run, usd_per_hour=None)["usd_per_million"] is None
    empty = Run(tokens=0, seconds=1.0, ttft=[1.0], per_request=[0])
    assert throughput.row("json", 1, empty, 1.0)["usd_per_million"] is None  # no tokens, no price per token
    assert throughput.row("json", 1, empty, 1.0)["itl_p50_ms"] is None


def test_command_line_values_are_checked() -> None:
    assert throughput.parse_ints("1, 8,16") == (1, 8, 16)
    assert throughput.parse_names("none,python,json") == ("none", "python", "json")
    with pytest.raises(ValueError, match="above 0"):
        throughput.parse_ints("0,8")
    with pytest.raises(ValueError, match=r"unknown grammar\(s\) cobol; choose from none, "):
        throughput.parse_names("none,cobol")


def test_python_m_benchmarks_throughput_prices_a_profile() -> None:
    args = cli.argparse.Namespace(
        quick=False,
        concurrency="1,4",
        languages="none,go",
        requests=3,
        max_tokens=64,
        profile="h100-fp8",
        usd_per_hour=None,
    )
    config = cli._throughput_config(args, throughput)
    assert (config.concurrency, config.languages, config.requests, config.max_tokens) == ((1, 4), ("none", "go"), 3, 64)
    assert config.usd_per_hour == price_per_hour(get_profile("h100-fp8"))
    priced = cli.argparse.Namespace(**{**vars(args), "usd_per_hour": 2.0})
    assert cli._throughput_config(priced, throughput).usd_per_hour == 2.0


def test_modal_bench_runs_the_same_code_against_the_deployment(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[dict[str, Any]] = []
    monkeypatch.setattr(throughput, "run", lambda config, **kwargs: calls.append({"config": config, **kwargs}))
    monkeypatch.setenv("MAZE_API_KEY", "sk-test")
    modal_deploy._bench(
        concurrency="1,16", languages="none,python", url="https://x.modal.run/", maze_profile="l40s-fp8"
    )
    [call] = calls
    assert call["base_url"] == "https://x.modal.run" and call["key"] == "sk-test"
    config = call["config"]
    assert (config.concurrency, config.languages, config.profile) == ((1, 16), ("none", "python"), "l40s-fp8")
    assert config.usd_per_hour == price_per_hour(get_profile("l40s-fp8"))


@pytest.mark.timeout(900)
def test_throughput_against_the_local_cpu_stack(stack: Stack, tmp_path: Path) -> None:
    config = throughput.Config((1, 2), ("none", "json"), requests=2, max_tokens=8, usd_per_hour=1.0)
    lines: list[str] = []
    data = throughput.run(config, tmp_path, lines.append, base_url=stack.base_url, key=stack.api_key)
    rows = data["rows"]
    assert [(r["language"], r["concurrency"]) for r in rows] == [("none", 1), ("none", 2), ("json", 1), ("json", 2)]
    for r in rows:
        assert r["requests"] == 2 and r["tokens"] > 0 and r["tokens_per_s"] > 0
        assert r["ttft_p50_ms"] <= r["ttft_p99_ms"]
        assert r["usd_per_million"] == pytest.approx(1.0 / (r["tokens_per_s"] * 3600) * 1e6, rel=0.01)
    assert any(r["itl_p50_ms"] is not None for r in rows)  # 8-token streams have gaps to measure
    printed = lines[-1]  # the table, as the Modal entrypoint prints it
    assert printed.startswith("| grammar | concurrency |") and "$/1M output tokens" in printed
    assert json.loads((tmp_path / "throughput.json").read_text())["rows"] == json.loads(json.dumps(rows))
    assert (tmp_path / "throughput.md").read_text().startswith("### Throughput against http://127.0.0.1:")
