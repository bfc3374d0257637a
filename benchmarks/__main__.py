"""``python -m benchmarks [part ...] [--quick] [--out DIR] [--no-litellm] [part options]``

Parts: ``gateway`` (1), ``grammar`` (2), ``decoding`` (3), ``ceiling`` (4); default all four, in
that order, which takes under 10 minutes on 2 idle cores (most of it vLLM's start-up and decoding).
``throughput`` runs only when named: against ``--url`` (a deployment) or the local CPU stack,
per ``--concurrency`` and ``--languages``, with $/1M tokens from ``--profile``'s price or ``--usd-per-hour``.
``plugin`` (6) runs only when named: the CPU stack with the engine plugin off, then on.
``allocator`` (2, only when named: 9 minutes on 2 shared cores at a load average of 6) repeats part
2's compile, matcher build and mask replay in child processes under glibc's malloc and each of
jemalloc and tcmalloc found here (``LD_PRELOAD``), and profiles the compile with ``perf`` where it works.
``masks`` (8) runs only when named (a few minutes): per grammar, where mask time goes along real
files, at lexeme boundaries or inside lexemes; ``--grammars`` narrows it; results in ``masks.md/json``.
``--quick`` runs each with tiny counts (the smoke test uses it): the numbers mean nothing then.

``engine`` (5, only when named: it is a CPU sweep of its own, ``--budget-s`` long, about 4 minutes
by default, and needs the corpora or exported files) replays vLLM 0.32's engine step (consume, then
fill B masks) serially and on the engine plugin's threads; results in ``engine-<tag>.md/json``::

    python -m benchmarks engine --export-files DIR        # here, with the corpora: write DIR, no sweep
    python -m benchmarks engine --files DIR --tokenizer app/tokenizer/qwen2.5-coder --budget-s 240
    python -m benchmarks engine --batch 1 8 32 64 --threads 1 2 --tag 2core

``--batch``, ``--threads``, ``--grammars``, ``--steps`` narrow the sweep; ``--tag`` names the result
(default ``<cores>core``).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any

from .common import RESULTS_DIR, Log

PARTS = ("gateway", "grammar", "decoding", "ceiling", "engine", "plugin", "masks", "throughput", "allocator")
#: What runs when no part is named: the engine sweep would add its whole budget, the plugin part
#: starts two CPU vLLMs (~10 minutes on 2 cores), masks replays files for minutes, throughput
#: measures a deployment, and the allocator comparison repeats part 2 three times over.
DEFAULT_PARTS = PARTS[:4]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.split("\n\n")[1])
    default = " ".join(DEFAULT_PARTS)
    parser.add_argument("parts", nargs="*", metavar="PART", help=f"any of {', '.join(PARTS)} (default: {default})")
    parser.add_argument("--quick", action="store_true", help="tiny counts: checks that the scripts run")
    parser.add_argument("--out", type=Path, default=RESULTS_DIR, help="results directory (default: %(default)s)")
    parser.add_argument("--no-litellm", action="store_true", help="skip LiteLLM's proxy in the gateway part")
    _engine_arguments(parser)
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
    if "allocator" in parts:
        from . import allocator

        log("allocators:")
        allocator.run(allocator.QUICK if args.quick else allocator.Config(), args.out, log)
    if "decoding" in parts:
        from . import decoding

        decoding.run(decoding.QUICK if args.quick else decoding.Config(), args.out, log)
    if "ceiling" in parts:
        from . import gpu_ceiling

        log("GPU ceiling:")
        gpu_ceiling.run(args.out, log)
    if "engine" in parts and not _engine(args, log):
        return 0
    if "plugin" in parts:
        from . import plugin_cpu

        log("engine plugin on the CPU vLLM, off vs on:")
        plugin_cpu.run(plugin_cpu.QUICK if args.quick else plugin_cpu.Config(), args.out, log)
    if "masks" in parts:
        _masks(args, log)
    if "throughput" in parts:
        from . import throughput

        throughput.run(_throughput_config(args, throughput), args.out, log, base_url=args.url, key=args.key)
    log(f"done in {time.perf_counter() - started:.0f} s; results in {args.out}")
    return 0


def _engine_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("engine part (--grammars, --tokenizer and --note apply to masks too)")
    group.add_argument("--files", type=Path, help="replay token streams exported here, not grammar_lab.corpus")
    group.add_argument("--export-files", type=Path, metavar="DIR", help="write the token streams into DIR and stop")
    group.add_argument("--tokenizer", type=Path, metavar="DIR", help="the Qwen tokenizer (default: app/tokenizer)")
    group.add_argument("--budget-s", type=float, help="wall budget of the sweep (default 240)")
    group.add_argument("--batch", type=int, nargs="+", help="batch sizes B (default 1 8 32 64 128)")
    group.add_argument("--threads", type=int, nargs="+", help="fill threads (default 1 2 4 8)")
    group.add_argument("--grammars", nargs="+", help="library grammars (default: all)")
    group.add_argument("--steps", type=int, help="decode steps per cell (default 128)")
    group.add_argument("--tag", help="results are engine-TAG.md/json (default: <cores>core)")
    group.add_argument("--note", default="", help="a note on the machine for the results (e.g. what else ran)")


def _engine(args: argparse.Namespace, log: Log) -> bool:
    """Run the engine part; False when it only exported files (nothing else should run then)."""
    from dataclasses import replace

    from . import engine_step

    config = engine_step.QUICK if args.quick else engine_step.Config()
    given = {
        "budget_s": args.budget_s,
        "batch_sizes": tuple(args.batch) if args.batch else None,
        "threads": tuple(args.threads) if args.threads else None,
        "grammars": tuple(args.grammars) if args.grammars else None,
        "steps": args.steps,
        "machine_tag": args.tag,
    }
    config = replace(config, **{key: value for key, value in given.items() if value is not None})
    if args.export_files:
        size = engine_step.export(args.export_files, config, args.tokenizer)
        log(f"engine: wrote token streams into {args.export_files} ({size / 1e3:.0f} KB)")
        return False
    log("engine step:")
    engine_step.run(config, args.out, log, files=args.files, tokenizer_dir=args.tokenizer, note=args.note)
    return True


def _masks(args: argparse.Namespace, log: Log) -> None:
    """Run the masks part: all library grammars, or those ``--grammars`` names."""
    from dataclasses import replace

    from . import masks

    log("where mask time goes:")
    config = masks.QUICK if args.quick else masks.Config()
    if args.grammars:
        config = replace(config, grammars=tuple(args.grammars))
    masks.run(config, args.out, log, tokenizer_dir=args.tokenizer, note=args.note)


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
