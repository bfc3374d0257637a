"""``python -m benchmarks [part ...] [--quick] [--out DIR] [--no-litellm]``

Parts: ``gateway`` (1), ``grammar`` (2), ``decoding`` (3), ``ceiling`` (4); default all four, in
that order, which takes under 10 minutes on 2 idle cores (most of it vLLM's start-up and decoding).
``plugin`` (6) runs only when named: the CPU stack with the engine plugin off, then on.
``--quick`` runs each with tiny counts (the smoke test uses it): the numbers mean nothing then.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from .common import RESULTS_DIR

PARTS = ("gateway", "grammar", "decoding", "ceiling", "plugin")
#: Parts that run only when named: each starts two CPU vLLMs and takes ~10 minutes on 2 cores.
DEFAULT_PARTS = ("gateway", "grammar", "decoding", "ceiling")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.split("\n\n")[1])
    parser.add_argument("parts", nargs="*", metavar="PART", help=f"any of {', '.join(PARTS)} (default: all)")
    parser.add_argument("--quick", action="store_true", help="tiny counts: checks that the scripts run")
    parser.add_argument("--out", type=Path, default=RESULTS_DIR, help="results directory (default: %(default)s)")
    parser.add_argument("--no-litellm", action="store_true", help="skip LiteLLM's proxy in the gateway part")
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
    if "plugin" in parts:
        from . import plugin_cpu

        log("engine plugin on the CPU vLLM, off vs on:")
        plugin_cpu.run(plugin_cpu.QUICK if args.quick else plugin_cpu.Config(), args.out, log)
    log(f"done in {time.perf_counter() - started:.0f} s; results in {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
