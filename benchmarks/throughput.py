"""The throughput part: throughput of a running deployment per concurrency and grammar, and what a token costs.

For each grammar (``none`` = unconstrained) and each concurrency ``c``: an untimed warm-up of ``c``
short requests (vLLM compiles for each new batch size and each grammar's first use), then ``n``
streamed chat completions ``c`` at a time through the gateway, measured with the decoding part's
own loop (``benchmarks.decoding.measure``). Per row: aggregate completion tokens/s, time to first
token p50/p99, inter-token latency p50/p99 (gaps between streamed chunks), and, given the
deployment's price per hour, **$ per 1M output tokens** = price / (tokens/s x 3600) x 10^6.

Run it against a deployment (``modal run modal_deploy.py::bench``, or ``python -m benchmarks
throughput --url URL``), or with no URL against the local CPU stack (tiny random model: the numbers
then only show that the pipeline works). A cost column needs a price: the profile's list price
from ``app.sizing`` (GPU + reserved CPU and memory), or ``--usd-per-hour``.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from functools import partial
from pathlib import Path
from typing import Any

import httpx

import grammars

from .common import Log, machine, machine_line, md_table, percentile, write_result
from .decoding import Run, measure, through_gateway

#: The prompt's language when the row is unconstrained.
UNCONSTRAINED = "none"


@dataclass(frozen=True)
class Config:
    concurrency: tuple[int, ...] = (1, 8, 16, 32)
    #: Library grammar names, or "none" for unconstrained.
    languages: tuple[str, ...] = (UNCONSTRAINED, "python", "json")
    #: Requests per row; None = max(4, 2 x concurrency).
    requests: int | None = None
    max_tokens: int = 256
    #: Price of the deployment per hour, for the $/1M column; None leaves it out.
    usd_per_hour: float | None = None
    #: Which profile the price and the row labels are for (informational).
    profile: str | None = None


QUICK = Config(concurrency=(1, 2), languages=(UNCONSTRAINED, "json"), requests=2, max_tokens=8)


def parse_ints(text: str) -> tuple[int, ...]:
    """ "1,8,16" -> (1, 8, 16); every value must be a whole number above 0."""
    values = tuple(int(part) for part in text.split(",") if part.strip())
    if not values or min(values) < 1:
        raise ValueError(f"expected comma-separated whole numbers above 0, got {text!r}")
    return values


def parse_names(text: str) -> tuple[str, ...]:
    """ "none,python" -> ("none", "python"); each a library grammar or "none"."""
    names = tuple(part.strip() for part in text.split(",") if part.strip())
    unknown = sorted(set(names) - {UNCONSTRAINED, *grammars.names()})
    if not names or unknown:
        choices = ", ".join([UNCONSTRAINED, *grammars.names()])
        raise ValueError(f"unknown grammar(s) {', '.join(unknown) or '(none given)'}; choose from {choices}")
    return names


def profile_price(profile: Any) -> float:
    """$/h of one container of a GPU profile at list prices (GPU + reserved CPU and memory)."""
    from app.sizing import price_per_hour

    return price_per_hour(profile)


def usd_per_million(tokens_per_s: float, usd_per_hour: float) -> float | None:
    """$ per 1,000,000 output tokens at that rate; None when nothing was generated."""
    return usd_per_hour / (tokens_per_s * 3600) * 1e6 if tokens_per_s > 0 else None


def row(language: str, concurrency: int, run: Run, usd_per_hour: float | None) -> dict[str, Any]:
    """One table row from one measured run."""
    rate = run.tokens / run.seconds if run.seconds > 0 else 0.0
    return {
        "language": language,
        "concurrency": concurrency,
        "requests": len(run.per_request),
        "tokens": run.tokens,
        "seconds": round(run.seconds, 3),
        "tokens_per_s": round(rate, 1),
        "ttft_p50_ms": round(percentile(run.ttft, 50) * 1e3, 1),
        "ttft_p99_ms": round(percentile(run.ttft, 99) * 1e3, 1),
        "itl_p50_ms": round(percentile(run.itl, 50) * 1e3, 2) if run.itl else None,
        "itl_p99_ms": round(percentile(run.itl, 99) * 1e3, 2) if run.itl else None,
        "usd_per_million": None if usd_per_hour is None else usd_per_million(rate, usd_per_hour),
    }


async def _grid(base_url: str, key: str, config: Config, log: Log) -> dict[str, Any]:
    rows = []
    headers = {"Authorization": f"Bearer {key}"}
    # Redirects: Modal answers a request held past 150 s (a cold start) with a 303 to a URL that waits on.
    async with httpx.AsyncClient(base_url=base_url, headers=headers, timeout=600, follow_redirects=True) as client:
        for name in config.languages:
            grammar = None if name == UNCONSTRAINED else name
            language = "Python" if grammar is None else grammars.get_info(grammar).language
            for concurrency in config.concurrency:
                await measure(client, language, grammar, concurrency, concurrency, 4)  # warm-up, untimed
                count = config.requests or max(4, 2 * concurrency)
                run = await measure(client, language, grammar, count, concurrency, config.max_tokens)
                rows.append(row(name, concurrency, run, config.usd_per_hour))
                log(format_row(rows[-1]))
    return {"rows": rows}


def format_row(r: dict[str, Any]) -> str:
    cost = "" if r["usd_per_million"] is None else f", ${r['usd_per_million']:.2f}/1M tokens"
    itl = "n/a" if r["itl_p50_ms"] is None else f"{r['itl_p50_ms']:.1f}/{r['itl_p99_ms']:.1f} ms"
    return (
        f"  {r['language']:>10} c={r['concurrency']:<3} {r['tokens_per_s']:8.1f} tok/s, "
        f"TTFT p50/p99 {r['ttft_p50_ms']:.0f}/{r['ttft_p99_ms']:.0f} ms, ITL p50/p99 {itl}{cost}"
    )


def table(rows: Sequence[dict[str, Any]]) -> str:
    """The rows as a Markdown table (printed by the Modal entrypoint too)."""

    def ms(value: float | None) -> str:
        return "n/a" if value is None else f"{value:.1f}"

    headers = ["grammar", "concurrency", "requests", "tok/s", "TTFT p50 / p99 (ms)", "ITL p50 / p99 (ms)"]
    return md_table(
        [*headers, "$/1M output tokens"],
        [
            [
                f"`{r['language']}`",
                r["concurrency"],
                r["requests"],
                f"{r['tokens_per_s']:,.1f}",
                f"{r['ttft_p50_ms']:.0f} / {r['ttft_p99_ms']:.0f}",
                f"{ms(r['itl_p50_ms'])} / {ms(r['itl_p99_ms'])}",
                "n/a" if r["usd_per_million"] is None else f"${r['usd_per_million']:,.2f}",
            ]
            for r in rows
        ],
    )


def markdown(data: dict[str, Any]) -> str:
    price = data["config"]["usd_per_hour"]
    where = data["base_url"] or "the local CPU stack (tiny random model)"
    return (
        f"### Throughput against {where}\n\n{table(data['rows'])}\n\n"
        + (f"Profile `{data['config']['profile']}`, " if data["config"]["profile"] else "")
        + (f"${price:.2f}/h. " if price is not None else "No price given. ")
        + f"max_tokens {data['config']['max_tokens']}, temperature 0.8, one warm-up per row. "
        f"Client: {machine_line(data['machine'])}.\n"
    )


def run(
    config: Config = Config(),
    out_dir: Path | None = None,
    log: Log = print,
    *,
    base_url: str | None = None,
    key: str | None = None,
) -> dict[str, Any]:
    """Measure the grid against ``base_url`` (with ``key``), or against a local CPU stack started here."""
    log(f"throughput: concurrency {list(config.concurrency)}, grammars {list(config.languages)}")
    key = key or os.environ.get("MAZE_API_KEY", "")
    measured, startup_s = through_gateway(partial(_grid, config=config, log=log), log, "throughput", base_url, key)
    data = {
        "benchmark": "throughput",
        "machine": machine("the client; the server is at base_url"),
        "base_url": base_url,
        "config": asdict(config),
        "startup_s": startup_s,
        **measured,
    }
    write_result("throughput", data, markdown, out_dir)
    log(table(data["rows"]))
    return data
