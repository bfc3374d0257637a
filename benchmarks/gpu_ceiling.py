"""Part 4: the decode ceiling of every GPU profile, from the same arithmetic that sizes them (app/fit.py).

Decoding is memory-bound at these batch sizes: every step reads all weights once, plus the KV cache
of every running sequence. So, per step with ``B`` sequences of ``C`` tokens of context::

    step time  >= (weight bytes + B x C x KV bytes per token) / memory bandwidth
    throughput <= B / step time                   (tokens/s summed over the B streams)

``B = 1, C = 0`` is the single-stream ceiling (bandwidth / weight bytes). The table takes ``C`` =
2,048 tokens (a prompt plus a completion, half-way through) and ``B`` = the profile's
``max_num_seqs``, and also ``B`` = as many 2,048-token sequences as the KV cache vLLM allocates can
hold (what raising ``max_num_seqs`` would buy). These are upper bounds: real kernels reach 60-80% of
bandwidth, and this is the yardstick for ``modal run modal_deploy.py``'s tokens/s column.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from app.fit import GB, fit
from app.profiles import PROFILES

from .common import machine, md_table, write_result

#: Context per running sequence assumed for the concurrent figures.
CONTEXT_TOKENS = 2048


def step_throughput(weights: float, kv_per_token: int, bandwidth: float, batch: int, context: int) -> float:
    """Upper bound on summed decode tokens/s for ``batch`` sequences of ``context`` tokens each."""
    step_seconds = (weights + batch * context * kv_per_token) / bandwidth
    return batch / step_seconds


def profile_row(name: str) -> dict[str, Any]:
    profile = PROFILES[name]
    f = fit(profile)
    assert profile.max_num_seqs is not None
    seqs = profile.max_num_seqs
    kv_limited = max(1, f.kv_capacity_tokens // CONTEXT_TOKENS)
    bw = f.gpu.bandwidth_bytes_s
    return {
        "gpu": f.gpu.name,
        "model": profile.model,
        "quantization": profile.quantization or "bf16",
        "weight_bytes": f.weights,
        "bandwidth_bytes_s": bw,
        "single_stream_tok_s": bw / f.weights,
        "kv_bytes_per_token": f.kv_bytes_per_token,
        "kv_capacity_tokens": f.kv_capacity_tokens,
        "max_num_seqs": seqs,
        "concurrent_tok_s": step_throughput(f.weights, f.kv_bytes_per_token, bw, seqs, CONTEXT_TOKENS),
        "per_stream_tok_s": step_throughput(f.weights, f.kv_bytes_per_token, bw, seqs, CONTEXT_TOKENS) / seqs,
        "kv_limited_seqs": kv_limited,
        "kv_limited_tok_s": step_throughput(f.weights, f.kv_bytes_per_token, bw, kv_limited, CONTEXT_TOKENS),
        "price_list_per_hour": f.gpu.price_list_per_hour,
    }


def markdown(data: dict[str, Any]) -> str:
    rows = []
    for name, r in data["profiles"].items():
        rows.append([
            f"`{name}`",
            r["gpu"],
            f"{r['weight_bytes'] / GB:.1f}",
            f"{r['bandwidth_bytes_s'] / GB:,.0f}",
            f"**{r['single_stream_tok_s']:.0f}**",
            f"{r['kv_capacity_tokens']:,}",
            f"{r['concurrent_tok_s']:.0f} ({r['max_num_seqs']} x {r['per_stream_tok_s']:.0f})",
            f"{r['kv_limited_tok_s']:.0f} ({r['kv_limited_seqs']} seqs)",
        ])  # fmt: skip
    table = md_table(
        [
            "profile",
            "GPU",
            "weights (GB)",
            "bandwidth (GB/s)",
            "single-stream ceiling (tok/s)",
            "KV cache (tokens)",
            f"concurrent ceiling at max_num_seqs, {CONTEXT_TOKENS}-token contexts (tok/s)",
            "if max_num_seqs filled the KV cache (tok/s)",
        ],
        rows,
    )
    return (
        "### GPU ceiling per profile (arithmetic from app/fit.py)\n\n"
        f"{table}\n\nUpper bounds from memory bandwidth: every decode step reads all weights once plus the KV "
        f"cache of every running sequence ({CONTEXT_TOKENS} tokens each here). Expect 60-80% of them in practice.\n"
    )


def run(out_dir: Path | None = None, log: Callable[[str], None] = print) -> dict[str, Any]:
    profiles = {name: profile_row(name) for name, p in PROFILES.items() if p.gpu is not None}
    data = {
        "benchmark": "gpu_ceiling",
        "machine": machine("arithmetic only; no GPU involved"),
        "context_tokens": CONTEXT_TOKENS,
        "profiles": profiles,
    }
    for name, r in profiles.items():
        log(f"  {name}: single stream {r['single_stream_tok_s']:.0f} tok/s, concurrent {r['concurrent_tok_s']:.0f}")
    kwargs = {} if out_dir is None else {"out_dir": out_dir}
    write_result("gpu_ceiling", data, markdown(data), **kwargs)
    return data
