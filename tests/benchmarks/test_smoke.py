"""Each benchmark runs end to end with tiny counts and writes results of the expected shape.

No timing is asserted (the numbers of a tiny run mean nothing); what is asserted is that the scripts
still run against today's gateway, grammars and profiles, that every stream arrived intact, and that
every result file has the fields BENCHMARKS.md quotes. LiteLLM's proxy is left out: it lives in a
separate venv that the full run installs.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
import torch

import grammars
from app.profiles import PROFILES
from benchmarks import allocator, decoding, engine_step, gateway_overhead, gpu_ceiling, grammar_engine, plugin_cpu
from benchmarks.plot import gateway_plot
from tests.conftest import Stack


def _read(out: Path, name: str) -> dict:
    assert (out / f"{name}.md").read_text().startswith("### ")
    return json.loads((out / f"{name}.json").read_text())


def test_gateway_overhead(tmp_path: Path) -> None:
    data = gateway_overhead.run(gateway_overhead.QUICK, tmp_path, log=lambda _line: None)
    assert _read(tmp_path, "gateway") == json.loads(json.dumps(data))
    assert set(data["targets"]) == {"direct", "gateway"}
    for name, target in data["targets"].items():
        assert target["errors"] == 0, name
        assert target["stream_integrity"]["failed"] == 0, target["stream_integrity"]["first_failure"]
        assert target["stream_integrity"]["ok"] == gateway_overhead.QUICK.stream_requests
        assert target["latency_c1"]["n"] == gateway_overhead.QUICK.latency_requests
        assert target["throughput_rps"] > 0
    assert data["targets"]["gateway"]["cpu_ms_per_request"] is not None
    assert set(data["added"]) == {"gateway"}
    assert len(data["goals"]) == 3
    png = gateway_plot(data, tmp_path / "gateway.png")
    assert png.read_bytes().startswith(b"\x89PNG")


def test_stream_integrity_check_finds_a_missing_chunk() -> None:
    from benchmarks.fake_upstream import chunk_texts, stream_events

    events = stream_events(4)
    expected = chunk_texts(4)
    assert gateway_overhead.stream_problem(b"".join(events), expected) == ""
    assert "content" in gateway_overhead.stream_problem(b"".join(events[:1] + events[2:]), expected)
    assert "[DONE]" in gateway_overhead.stream_problem(b"".join(events[:-1]), expected)


def test_grammar_engine(tmp_path: Path) -> None:
    data = grammar_engine.run(grammar_engine.QUICK, tmp_path, log=lambda _line: None)
    assert _read(tmp_path, "grammar")["benchmark"] == "grammar_engine"
    assert set(data["grammars"]) <= set(grammars.names())
    assert {"python", "json"} <= set(data["grammars"])
    for result in data["grammars"].values():
        assert set(result["compile"]) == {
            "lark_to_llguidance_ms",
            "validate_ms",
            "compile_median_ms",
            "compile_min_ms",
            "compile_max_ms",
            "matcher_build_ms",
            "first_mask_ms",
        }
        assert result["compile"]["compile_max_ms"] >= result["compile"]["validate_ms"]
        assert result["compile"]["compile_min_ms"] <= result["compile"]["compile_median_ms"]
        assert result["compile"]["compile_median_ms"] <= result["compile"]["compile_max_ms"]
        assert set(result["gateway_validation"]) == {"cold_ms", "cached_p50_us", "cached_p99_us"}
    assert data["grammars"]["python"]["mask"]["n"] > 0


def test_allocator(tmp_path: Path) -> None:
    data = allocator.run(allocator.QUICK, tmp_path, log=lambda _line: None)
    assert _read(tmp_path, "allocator")["benchmark"] == "allocator"
    found, missing = allocator.available()
    assert set(data["missing"]) == set(missing)
    for by_allocator in data["grammars"].values():
        # Every allocator found ran (the part checks that each child had its library mapped).
        assert set(by_allocator) == set(found)
        for result in by_allocator.values():
            assert len(result["rounds"]) == allocator.QUICK.rounds
            assert result["compile_fresh_ms"] > 0 and result["matcher_build_ms"] > 0
            assert all(r["replay_tokens"] > 0 for r in result["rounds"])
    assert bool(data["perf"]["note"]) != bool(data["perf"]["malloc_share_pct"])


def test_malloc_share_sums_glibc_allocator_symbols() -> None:
    report = """# Overhead  Shared Object  Symbol
     5.98%  libc.so.6             [.] _int_free
     5.33%  libc.so.6             [.] _int_malloc
     3.56%  libc.so.6             [.] __memmove_avx_unaligned_erms
     2.42%  libc.so.6             [.] unlink_chunk.constprop.0
     1.70%  libc.so.6             [.] cfree@GLIBC_2.2.5
     2.09%  libpython3.11.so.1.0  [.] _PyObject_Malloc
"""
    assert allocator.malloc_share(report) == 15.4


def test_engine_step(tmp_path: Path) -> None:
    exported = tmp_path / "files"
    assert 0 < engine_step.export(exported, engine_step.QUICK) < 100_000
    data = engine_step.run(engine_step.QUICK, tmp_path, log=lambda _line: None, files=exported)
    assert _read(tmp_path, "engine-quick")["benchmark"] == "engine_step"
    config = engine_step.QUICK
    assert len(data["cells"]) == len(config.batch_sizes) * len(config.threads) * len(config.caches)
    for cell in data["cells"]:
        assert cell["steps"] == config.steps and not cell["cut"]
        assert cell["rejected_tokens"] == 0
        assert {"consume", "fill", "step"} <= set(cell) and cell["step"]["p99_ms"] >= cell["step"]["p50_ms"]
        assert (cell["mask_cpu_per_seq_ms"] is not None) == (cell["threads"] == 1)
        if cell["threads"] == 1:  # what 2 threads could make of these masks, from each one's own time
            largest, schedule = cell["largest_mask"]["p50_ms"], cell["schedules_by_threads"][2]
            assert 0 < largest <= cell["fill"]["p50_ms"]
            floor, row_order, costliest_first = (
                schedule[k]["p50_ms"] for k in ("floor", "row_order", "costliest_first")
            )
            assert largest <= floor <= costliest_first <= row_order * 1.34  # LPT is within 4/3 of the best
            assert floor <= row_order <= cell["fill"]["p50_ms"]
            assert floor >= cell["fill"]["p50_ms"] / 2 * 0.9  # the even share: timing each mask adds a little
        else:
            assert cell["largest_mask"] is None and cell["schedules_by_threads"] is None
        assert set(cell["ratio"]) == {t["label"] for t in data["targets"]}
        assert all(0 < r["p99"] <= r["p50"] <= 1 for r in cell["ratio"].values())
    # The guard ran: every threaded cell with B > 1 compared its first steps with the serial fill.
    threaded = [c for c in data["cells"] if c["threads"] > 1 and c["batch"] > 1]
    assert threaded and all(c["guarded_steps"] == config.guard_steps for c in threaded)
    assert data["guard"]["steps"] == config.guard_steps * len(threaded)
    setup = data["setup"]["json"]
    assert {"off", "on", "on_miss"} == set(setup) and setup["on"]["n"] == config.setup_requests
    summary = data["summary"]["json"]
    assert summary["batch"] == max(config.batch_sizes) and set(summary["fill_p50_ms_by_threads"]) == {1, 2}
    assert set(summary["schedules_p50_ms_by_threads"]) == {2, *engine_step.FILL_GOALS_MS}
    assert "8 threads from the serial masks: floor / row order" in (tmp_path / "engine-quick.md").read_text()


def test_makespan_is_greedy_list_scheduling() -> None:
    # Row order puts the long mask last: 2 threads finish at 1+1, then the 4 lands on one of them.
    assert engine_step.makespan([1.0, 1.0, 1.0, 1.0, 4.0], 2) == 6.0
    assert engine_step.makespan([4.0, 1.0, 1.0, 1.0, 1.0], 2) == 4.0  # costliest first
    schedule = engine_step.schedules([[1e-3, 1e-3, 1e-3, 1e-3, 4e-3]], 2)
    assert schedule["floor"]["p50_ms"] == 4.0  # the costliest mask, above the even share of 4 ms
    assert (schedule["row_order"]["p50_ms"], schedule["costliest_first"]["p50_ms"]) == (6.0, 4.0)


class _OneBitWrong(engine_step.ParallelMaskFiller):
    """The plugin's filler, then one flipped bit in the last row: what the guard is there to catch."""

    def fill(self, rows: list, bitmask: torch.Tensor) -> None:
        super().fill(rows, bitmask)
        bitmask[len(rows) - 1, 0] ^= 1


def test_engine_step_guard_catches_a_differing_bit(tmp_path: Path) -> None:
    config = replace(engine_step.QUICK, batch_sizes=(4,), threads=(2,), caches=(True,))
    with pytest.raises(engine_step.GuardMismatch, match="rows \\[3\\]"):
        engine_step.run(config, tmp_path, log=lambda _line: None, make_filler=_OneBitWrong)


def test_gpu_ceiling(tmp_path: Path) -> None:
    data = gpu_ceiling.run(tmp_path, log=lambda _line: None)
    assert set(data["profiles"]) == {name for name, p in PROFILES.items() if p.gpu is not None}
    for row in data["profiles"].values():
        # More streams share each read of the weights: the concurrent bound is above the single one.
        assert row["concurrent_tok_s"] >= row["single_stream_tok_s"]
        assert row["kv_capacity_tokens"] > 0
    assert _read(tmp_path, "gpu_ceiling")["context_tokens"] == gpu_ceiling.CONTEXT_TOKENS


@pytest.mark.timeout(900)
def test_decoding(stack: Stack, tmp_path: Path) -> None:
    data = decoding.run(decoding.QUICK, tmp_path, log=lambda _line: None, base_url=stack.base_url, key=stack.api_key)
    assert set(data["grammars"]) == set(decoding.QUICK.grammars)
    for entry in data["grammars"].values():
        for label in ("c1", "c8"):
            assert entry[label]["constrained"]["tokens"] > 0
            assert entry[label]["unconstrained"]["tokens"] > 0
    assert data["batch"]["items"] == decoding.QUICK.batch_size
    assert _read(tmp_path, "decoding")["batch"]["speedup"] > 0


@pytest.mark.timeout(900)
def test_plugin_cpu(stack: Stack, tmp_path: Path) -> None:
    # The session's stack stands in for both settings: this checks the part's mechanics and table (its
    # real run starts its own stacks); tests/e2e/test_engine_plugin.py compares plugin on and off.
    gateway = (stack.base_url, stack.api_key)
    gateways = {"on": gateway, "off": gateway}
    data = plugin_cpu.run(plugin_cpu.QUICK, tmp_path, log=lambda _line: None, gateways=gateways)
    for setting in ("off", "on"):
        entry = data["plugin"][setting]["json"]
        for concurrency, _ in plugin_cpu.QUICK.levels:
            assert entry[f"c{concurrency}"]["constrained"]["tokens"] > 0
            cell = entry[f"c{concurrency}"]
            assert cell["ratio"] > 0
            assert len(cell["ratio_rounds"]) == plugin_cpu.QUICK.rounds
            assert cell["ratio_rounds"] == sorted(cell["ratio_rounds"])
            assert cell["ratio"] == cell["ratio_rounds"][(plugin_cpu.QUICK.rounds - 1) // 2]
    assert "on ratio" in (tmp_path / "plugin.md").read_text()
    assert _read(tmp_path, "plugin")["plugin"]["on"]["json"]["c4"]["unconstrained"]["tokens"] > 0
