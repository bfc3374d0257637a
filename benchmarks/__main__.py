"""``python -m benchmarks [part ...] [--quick] [--out DIR] [--no-litellm] [throughput options]``

Parts: ``gateway`` (1), ``grammar`` (2), ``decoding`` (3), ``ceiling`` (4); default all four, in
that order, which takes under 10 minutes on 2 idle cores (most of it vLLM's start-up and decoding).
``throughput`` runs only when named: against ``--url`` (a deployment) or the local CPU stack,
per ``--concurrency`` and ``--languages``, with $/1M tokens from ``--profile``'s price or ``--usd-per-hour``.
``--quick`` runs each with tiny counts (the smoke test uses it): the numbers mean nothing then.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any

from .common import RESULTS_DIR

PARTS = ("gateway", "grammar", "decoding", "ceiling", "throughput")
DEFAULT_PARTS = PARTS[:4]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.split("\n\n")[1])
    parser.add_argument("parts", nargs="*", metavar="PART", help=f"any of {', '.join(PARTS)} (default: all)")
    parser.add_argument("--quick", action="store_true", help="tiny counts: checks that the scripts run")
    parser.add_argument("--out", type=Path, default=RESULTS_DIR, help="results directory (default: %(default)s)")
    parser.add_argument("--no-litellm", action="store_true", help="skip LiteLLM's proxy in the gateway part")
    parser.add_argument("--url", help="throughput: the deployment's base URL (default: start the local CPU stack)")
    parser.add_argument("--key", default=os.environ.get("MAZE_API_KEY"), help="throughput: API key ($MAZE_API_KEY)")
    parser.add_argument("--concurrency", default="1,8,16,32", help="throughput: levels (default: %(default)s)")
    parser.add_argument("--languages", default="none,python,json", help="throughput: grammars (default: %(default)s)")
    parser.add_argument("--requests", type=int, default=None, help="throughput: requests per row (default 2 x c)")
    parser.add_argument("--max-tokens", type=int, default=256, help="throughput: per request (default: %(default)s)")
    parser.add_argument("--profile", help="throughput: GPU profile whose list price gives the $/1M column")
    parser.add_argument("--usd-per-hour", type=float, help="throughput: the deployment's price, instead of --profile")
    args = parser.parse_args(argv)
    parts = args.parts or list(DEFAULT_PARTS)
    unknown = sorted(set(parts) - set(PARTS))
    if unknown:
        parser.error(f"unknown part(s) {', '.join(unknown)}; choose from {', '.join(PARTS)}")
    log = lambda line: print(line, flush=True)  # noqa: E731
    started = time.perf_counter()
    if "gateway" in parts:
        from dataclasses import replace

        from . import gateway_overhead
        from .plot import gateway_plot

        config = gateway_overhead.QUICK if args.quick else gateway_overhead.Config()
        if args.no_litellm:
            config = replace(config, litellm=False)
        data = gateway_overhead.run(config, args.out, log)
        gateway_plot(data, args.out / "gateway.png")
    if "grammar" in parts:
        from . import grammar_engine

        log("grammar engine:")
        grammar_engine.run(grammar_engine.QUICK if args.quick else grammar_engine.Config(), args.out, log)
    if "decoding" in parts:
        from . import decoding

        decoding.run(decoding.QUICK if args.quick else decoding.Config(), args.out, log)
    if "ceiling" in parts:
        from . import gpu_ceiling

        log("GPU ceiling:")
        gpu_ceiling.run(args.out, log)
    if "throughput" in parts:
        from . import throughput

        throughput.run(_throughput_config(args, throughput), args.out, log, base_url=args.url, key=args.key)
    log(f"done in {time.perf_counter() - started:.0f} s; results in {args.out}")
    return 0


def _throughput_config(args: argparse.Namespace, throughput: Any) -> Any:
    """The throughput part's Config from the command line (QUICK with --quick)."""
    if args.quick:
        return throughput.QUICK
    price = args.usd_per_hour
    if price is None and args.profile:
        from app.profiles import get_profile

        price = throughput.profile_price(get_profile(args.profile))
    return throughput.Config(
        concurrency=throughput.parse_ints(args.concurrency),
        languages=throughput.parse_names(args.languages),
        requests=args.requests,
        max_tokens=args.max_tokens,
        usd_per_hour=price,
        profile=args.profile,
    )


if __name__ == "__main__":
    sys.exit(main())
