"""Part 4: the decode ceiling of every GPU profile, from the same arithmetic that sizes them (app/fit.py).

Decoding is memory-bound at these batch sizes: every step reads all weights once, plus the KV cache
of every running sequence. So, per step with ``B`` sequences of ``C`` tokens of context::

    step time  >= (weight bytes + B x C x KV bytes per token) / memory bandwidth
    throughput <= B / step time                   (tokens/s summed over the B streams)

``B = 1, C = 0`` is the single-stream ceiling (bandwidth / weight bytes). The table takes ``C`` =
2,048 tokens (the workload model's typical request, ``app.sizing``) and ``B`` = the profile's
``max_num_seqs``, and also ``B`` = as many 2,048-token sequences as the KV cache vLLM allocates can
hold. These are upper bounds: real kernels reach 60-80% of bandwidth, and this is the yardstick for
``modal run modal_deploy.py``'s tokens/s column. The same run writes the sizing table (what binds,
the preemption risk) and the cost table ($/h and $/1M output tokens, ceiling x ``EFFICIENCY``) that
README.md and BENCHMARKS.md quote; a test keeps the quotes equal to this output.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from app.fit import GB
from app.profiles import PROFILES
from app.sizing import (
    EFFICIENCY,
    SEED_USD_PER_DAY_1000_GENERATIONS,
    WORKLOAD,
    host_cpu,
    host_memory_gib,
    size,
    step_throughput,
)

from .common import Log, machine, md_table, write_result

#: Context per running sequence assumed for the concurrent figures: the workload model's typical request.
CONTEXT_TOKENS = WORKLOAD.typical_tokens


def profile_row(name: str) -> dict[str, Any]:
    profile = PROFILES[name]
    sized = size(profile)
    f = sized.fit
    seqs = sized.max_num_seqs
    kv_limited = max(1, f.kv_capacity_tokens // CONTEXT_TOKENS)
    return {
        "gpu": f.gpu.name,
        "gpus": f.gpus,
        "model": profile.model,
        "quantization": profile.quantization or "bf16",
        "weight_bytes": f.total_weights,
        "bandwidth_bytes_s": f.gpu.bandwidth_bytes_s,
        "single_stream_tok_s": f.decode_ceiling_tok_s,
        "kv_bytes_per_token": f.kv_bytes_per_token,
        "kv_capacity_tokens": f.kv_capacity_tokens,
        "max_num_seqs": seqs,
        "concurrent_tok_s": step_throughput(f, seqs, CONTEXT_TOKENS),
        "per_stream_tok_s": step_throughput(f, seqs, CONTEXT_TOKENS) / seqs,
        "kv_limited_seqs": kv_limited,
        "kv_limited_tok_s": step_throughput(f, kv_limited, CONTEXT_TOKENS),
        "price_list_per_hour": f.gpu.price_list_per_hour,
        # Sizing (app.sizing) and cost: ceiling x EFFICIENCY, GPU + reserved CPU and memory.
        "kv_seqs": sized.kv_seqs,
        "mask_seqs_today": sized.mask_seqs_today,
        "mask_threads": profile.mask_threads,
        "binds_today": sized.binds_today,
        "binds_with_plugin": sized.binds_with_plugin,
        "preempts_after": sized.preempts_after,
        "step_ms": sized.step_ms,
        "cpu": host_cpu(profile),
        "memory_gib": host_memory_gib(profile),
        "usd_per_hour": sized.usd_per_hour,
        "tok_s_1": sized.single_stream_tok_s,
        "usd_per_million_1": sized.usd_per_million(sized.single_stream_tok_s),
        "tok_s_batch": sized.batch_tok_s,
        "usd_per_million_batch": sized.usd_per_million(sized.batch_tok_s),
        "tok_s_python_today": sized.constrained_batch_tok_s(1),
        "usd_per_million_python_today": sized.usd_per_million(sized.constrained_batch_tok_s(1)),
        "usd_1000_generations_1": sized.usd_per_thousand_generations(sized.single_stream_tok_s),
        "usd_1000_generations_batch": sized.usd_per_thousand_generations(sized.batch_tok_s),
    }


def ceiling_table(profiles: dict[str, dict[str, Any]]) -> str:
    rows = []
    for name, r in profiles.items():
        gpu = r["gpu"] if r["gpus"] == 1 else f"{r['gpus']} x {r['gpu']}"
        rows.append([
            f"`{name}`",
            gpu,
            f"{r['weight_bytes'] / GB:.1f}",
            f"{r['bandwidth_bytes_s'] / GB:,.0f}",
            f"**{r['single_stream_tok_s']:.0f}**",
            f"{r['kv_capacity_tokens']:,}",
            f"{r['concurrent_tok_s']:.0f} ({r['max_num_seqs']} x {r['per_stream_tok_s']:.0f})",
            f"{r['kv_limited_tok_s']:.0f} ({r['kv_limited_seqs']} seqs)",
        ])  # fmt: skip
    return md_table(
        [
            "profile",
            "GPU",
            "weights (GB)",
            "bandwidth per GPU (GB/s)",
            "single-stream ceiling (tok/s)",
            "KV cache (tokens)",
            f"concurrent ceiling at max_num_seqs, {CONTEXT_TOKENS}-token contexts (tok/s)",
            "if max_num_seqs filled the KV cache (tok/s)",
        ],
        rows,
    )


def memory_table() -> str:
    """Per GPU profile, vLLM's start-up rule term by term on one GPU (README "Profiles")."""
    rows = []
    for name, profile in PROFILES.items():
        if profile.is_cpu:
            continue
        f = size(profile).fit
        gpu = f.gpu.name if f.gpus == 1 else f"{f.gpus} x {f.gpu.name}"
        model = (profile.model or "").removeprefix("Qwen/Qwen2.5-Coder-")
        rows.append([
            f"`{name}`",
            gpu,
            f"{model}, {profile.quantization or 'BF16'}",
            f"{f.weights / GB:.1f}",
            f"{f.activations / GB:.1f} + {f.overhead / GB:.1f}",
            f"{f.kv_cache / GB:.1f}",
            f"{f.required / GB:.1f} / {f.budget / GB:.1f} ({profile.gpu_memory_utilization} x {f.gpu.memory_gb:.1f})",
            f"{f.kv_capacity_tokens:,}",
        ])  # fmt: skip
    return md_table(
        [
            "profile",
            "GPU",
            "model",
            "weights per GPU",
            "act + overhead",
            "KV of one 8,192-token sequence",
            "total / budget (GB)",
            "KV pool vLLM allocates (tokens)",
        ],
        rows,
    )


def sizing_table(profiles: dict[str, dict[str, Any]]) -> str:
    """Per profile: the pool, max_num_seqs, what binds, the preemption risk, the container (README)."""
    rows = [
        [
            f"`{name}`",
            f"{r['kv_capacity_tokens']:,}",
            f"**{r['max_num_seqs']}**",
            f"{r['kv_seqs']}",
            f"{r['step_ms']:.1f}",
            f"{r['binds_today']} ({r['mask_seqs_today']} seqs on 1 thread)",
            f"{r['binds_with_plugin']} ({r['mask_threads']} threads)",
            f"{r['preempts_after']}",
            f"{r['cpu']:g} / {r['memory_gib']}",
        ]
        for name, r in profiles.items()
    ]
    return md_table(
        [
            "profile",
            "KV pool (tokens)",
            "max_num_seqs",
            "typical requests the pool holds (+25%)",
            "decode step (ms)",
            "binds today (vLLM 0.32 masks)",
            "binds with the mask plugin",
            "8k sequences before preemption",
            "CPU cores / memory (GiB)",
        ],
        rows,
    )


def cost_table(profiles: dict[str, dict[str, Any]]) -> str:
    """Per profile: $/h and $/1M output tokens at 1 stream and at max_num_seqs (README, BENCHMARKS)."""
    rows = [
        [
            f"`{name}`",
            f"{r['usd_per_hour']:.2f}",
            f"{r['tok_s_1']:.0f} / **${r['usd_per_million_1']:.2f}**",
            f"{r['max_num_seqs']}: {r['tok_s_batch']:,.0f} / **${r['usd_per_million_batch']:.2f}**",
            f"{r['tok_s_python_today']:,.0f} / ${r['usd_per_million_python_today']:.2f}",
            f"${r['usd_1000_generations_1']:.2f} / ${r['usd_1000_generations_batch']:.2f}",
        ]
        for name, r in profiles.items()
    ]
    return md_table(
        [
            "profile",
            "$/h (GPU + CPU + memory)",
            "1 stream: tok/s / $ per 1M",
            "max_num_seqs streams: tok/s / $ per 1M",
            "same, Python grammar, vLLM 0.32 serial masks",
            f"1,000 generations x {WORKLOAD.completion_tokens} tokens: 1 stream / max_num_seqs",
        ],
        rows,
    )


def cost_notes() -> str:
    """How the cost table is computed, and the seed's estimate next to it."""
    seed_hours = SEED_USD_PER_DAY_1000_GENERATIONS / 1.20
    return (
        f"Ceiling arithmetic x {EFFICIENCY} (the lowest fraction of the bandwidth ceiling measured on an H100: "
        "0.78 at one stream, 0.61 at 64; one-off runs of ../shared/gpu-rig, commands in its README), "
        f"contexts of {CONTEXT_TOKENS} tokens, list prices: GPU plus the CPU "
        "cores and memory the container reserves. GPU busy time only: a scale-to-zero deployment also pays "
        "each cold start and the idle scale-down window. The seed plan estimated "
        f"${SEED_USD_PER_DAY_1000_GENERATIONS:.2f} a day for 1,000 generations, {seed_hours:.1f} GPU-hours of "
        "its L40S at $1.20/h, for BF16 weights that do not fit that card; the last column is the same "
        '1,000 generations at today\'s prices and speeds. "Binds" in the sizing table is judged at the '
        "shortest step (weights only: short contexts), the strictest case; at 2,048-token contexts the KV reads "
        "lengthen the step and hide more of the masks, so here only h100-fp8's Python rate drops with serial masks."
    )


def markdown(data: dict[str, Any]) -> str:
    profiles = data["profiles"]
    return (
        "### GPU ceiling per profile (arithmetic from app/fit.py and app/sizing.py)\n\n"
        f"{ceiling_table(profiles)}\n\nUpper bounds from memory bandwidth: every decode step reads all weights "
        f"once plus the KV cache of every running sequence ({CONTEXT_TOKENS} tokens each here); with tensor "
        "parallelism each GPU reads its share, plus two PCIe all-reduces per layer. Expect 60-80% of them in "
        "practice.\n\n### Sizing per profile (app/sizing.py)\n\n"
        f"{sizing_table(profiles)}\n\n### Cost per profile\n\n{cost_table(profiles)}\n\n{cost_notes()}\n"
    )


def run(out_dir: Path | None = None, log: Log = print) -> dict[str, Any]:
    profiles = {name: profile_row(name) for name, p in PROFILES.items() if p.gpu is not None}
    data = {
        "benchmark": "gpu_ceiling",
        "machine": machine("arithmetic only; no GPU involved"),
        "context_tokens": CONTEXT_TOKENS,
        "efficiency": EFFICIENCY,
        "profiles": profiles,
    }
    for name, r in profiles.items():
        log(
            f"  {name}: single stream {r['single_stream_tok_s']:.0f} tok/s, concurrent {r['concurrent_tok_s']:.0f}, "
            f"${r['usd_per_million_batch']:.2f}/1M tokens at {r['max_num_seqs']} streams"
        )
    return write_result("gpu_ceiling", data, markdown, out_dir)
