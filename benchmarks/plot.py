"""The one plot: gateway overhead next to a direct call and LiteLLM's proxy (``results/gateway.png``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

COLORS = {"direct": "#7f7f7f", "gateway": "#1f77b4", "litellm": "#d62728"}


def gateway_plot(data: dict[str, Any], path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")  # files only, no display
    import matplotlib.pyplot as plt

    targets = data["targets"]
    names = list(targets)
    colors = [COLORS.get(n, "#2ca02c") for n in names]
    fig, axes = plt.subplots(1, 3, figsize=(13, 4.6))

    ax = axes[0]
    width = 0.38
    xs = range(len(names))
    p50 = [targets[n]["latency_c1"]["p50_ms"] for n in names]
    p99 = [targets[n]["latency_c1"]["p99_ms"] for n in names]
    ax.bar([x - width / 2 for x in xs], p50, width, color=colors, label="p50")
    ax.bar([x + width / 2 for x in xs], p99, width, color=colors, alpha=0.45, label="p99")
    ax.set_yscale("log")
    ax.set_xticks(list(xs), names)
    ax.set_ylabel("ms (log scale)")
    ax.set_title("Latency, concurrency 1 (p50 solid, p99 light)")
    for x, value in zip(xs, p50, strict=True):
        ax.annotate(f"{value:.2f}", (x - width / 2, value), ha="center", va="bottom", fontsize=8)

    ax = axes[1]
    rps = [targets[n]["throughput_rps"] for n in names]
    ax.bar(names, rps, color=colors)
    ax.set_yscale("log")
    ax.set_ylabel("requests / s (log scale)")
    ax.set_title(f"Throughput, concurrency {data['config']['concurrency']}")
    for x, value in enumerate(rps):
        ax.annotate(f"{value:,.0f}", (x, value), ha="center", va="bottom", fontsize=8)

    ax = axes[2]
    ttfc = [targets[n]["stream_ttfc"]["p50_ms"] for n in names]
    total = [targets[n]["stream_total"]["p50_ms"] for n in names]
    ax.bar([x - width / 2 for x in xs], ttfc, width, color=colors, alpha=0.45, label="first chunk")
    ax.bar([x + width / 2 for x in xs], total, width, color=colors, label="whole stream")
    ax.set_yscale("log")
    ax.set_xticks(list(xs), names)
    ax.set_ylabel("ms (log scale)")
    ax.set_title(f"{data['config']['chunks']}-chunk stream, p50\nfirst chunk (light), whole stream (solid)")

    fig.suptitle(f"Gateway overhead vs direct and LiteLLM proxy — {data['machine']['utc']}", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
