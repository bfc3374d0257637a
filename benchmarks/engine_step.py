"""Part 5: vLLM 0.32's engine step for B constrained sequences, with and without the engine plugin.

vLLM's engine thread does two grammar jobs per decode step, one sequence after another: each running
sequence's matcher consumes the token sampled last step (``accept_tokens``), then every matcher fills
its row of one bitmask tensor (``StructuredOutputManager.grammar_bitmask``). Async scheduling runs
both while the GPU computes the forward pass, so a step costs about max(forward, consume + fill).

This part replays that loop on the CPU alone. Each of B sequences replays a different real file of
the grammar's language (``grammar_lab.corpus``, tokenized with the Qwen tokenizer, as if the model wrote
it) for ``steps`` steps. Per step: serial ``consume_token`` for all B, then the B masks: with one
thread, serial ``fill_next_token_bitmask`` per row (vLLM as shipped); with more, the plugin's own
``ParallelMaskFiller``. Matchers are fresh ``LLMatcher`` builds per sequence (cache off: vLLM's
guidance backend) or taken from the plugin's ``CompiledGrammarCache`` (cache on: warm matchers
that earlier cells of the same grammar gave back, reset to their start state).

Reported per grammar and cell (B x threads x cache): consume, fill and step wall per step p50 / p99,
the CPU all threads spent on the fill, mean mask CPU per sequence (serial cells: fill wall / B), and
the throughput ratio a GPU would keep, forward / max(forward, consume + fill), against each GPU
profile's bandwidth-bound decode step (``app.fit``) and against the step times measured on GPUs
(DESIGN.md). Also the constraint setup per request, cache off (a build) and on (a reused matcher), each with
the first mask it then pays. The serial cells also time each mask alone and derive what T threads
could make of those masks (``schedules``: the floor, batch order, costliest first), which separates what
threads lose to scheduling from what they lose to each mask costing more beside the others. A guard
compares the first steps of every threaded cell with a serial fill of the same matchers and fails on
any differing bit.

The corpora exist only where ``python -m grammar_lab.corpus fetch`` ran: ``--export-files DIR`` writes
the token streams a run needs (small JSON, one per language) and ``--files DIR`` replays them
elsewhere. ``--budget-s`` bounds the sweep: each cell gets a share of what is left, in proportion to
B, and the serial cell stops after ``min_steps`` once over it (marked "cut"); the threaded cells of
the same grammar x cache x B then replay exactly as many steps, so they compare like for like.
"""

from __future__ import annotations

import heapq
import json
import os
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any, Protocol

import llguidance
import llguidance.torch as llguidance_torch
import torch

import grammars
from app.fit import fit
from app.profiles import PROFILES
from app.vllm_plugin.grammar_cache import CompiledGrammarCache
from app.vllm_plugin.mask_fill import ParallelMaskFiller

from .common import Log, machine, machine_line, md_table, part_results, percentile, write_result

#: Decode step times measured on GPUs (32B model; DESIGN.md, "The grammar engine inside vLLM 0.32"):
#: the middle of each measured range, in ms. The fit-based steps are bandwidth lower bounds.
MEASURED_STEP_MS = {"H100 BF16": 21.0, "H100 FP8": 11.0, "L40S FP8": 40.0, "A100 BF16": 33.0}

#: The issue's goals for the mask fill of 64 code-grammar sequences, by fill threads (ms per step).
FILL_GOALS_MS = {4: 20.0, 8: 10.0}
#: The issue's goal for constraint setup per request with the cache (ms).
SETUP_GOAL_MS = 2.0


@dataclass(frozen=True)
class Config:
    #: Library grammars to replay; empty: every one in ``grammars.names()``.
    grammars: tuple[str, ...] = ()
    batch_sizes: tuple[int, ...] = (1, 8, 32, 64, 128)
    threads: tuple[int, ...] = (1, 2, 4, 8)
    caches: tuple[bool, ...] = (False, True)
    #: Decode steps per cell: the GPU benchmark's streams are 128 tokens long.
    steps: int = 128
    files_per_language: int = 32
    #: Wall budget of the whole sweep; a cell over its share stops after ``min_steps``.
    budget_s: float = 240.0
    min_steps: int = 8
    #: Threaded cells compare this many first steps with a serial fill of the same matchers.
    guard_steps: int = 4
    setup_requests: int = 16
    #: ``engine-<tag>.md/json``; empty: ``<cores>core``.
    machine_tag: str = ""


QUICK = Config(
    grammars=("json",),
    batch_sizes=(1, 4),
    threads=(1, 2),
    steps=6,
    files_per_language=4,
    budget_s=30.0,
    min_steps=2,
    guard_steps=3,
    setup_requests=3,
    machine_tag="quick",
)


class GuardMismatch(AssertionError):
    """A threaded fill wrote different bits than the serial fill of the same matchers."""


class Filler(Protocol):
    def fill(self, rows: list[tuple[llguidance.LLMatcher, int]], bitmask: torch.Tensor) -> None: ...

    def close(self) -> None: ...


@dataclass(frozen=True)
class Stream:
    """One file's first tokens, as the model would have sampled them."""

    name: str
    tokens: tuple[int, ...]


@dataclass(frozen=True)
class StepTarget:
    """A GPU decode step that the engine's CPU work hides behind while it is shorter."""

    label: str
    forward_ms: float
    source: str  # "fit" (bandwidth lower bound from app.fit) or "measured" (DESIGN.md)


@dataclass
class CellTimes:
    """Per-step measurements of one grammar x B x threads x cache cell, in seconds."""

    consume: list[float] = field(default_factory=list)
    fill: list[float] = field(default_factory=list)
    fill_cpu: list[float] = field(default_factory=list)
    #: serial cells only: every mask's own time, per step
    masks: list[list[float]] = field(default_factory=list)
    rejected: int = 0
    guarded_steps: int = 0


# ------------------------------------------------------------------------------------------ inputs


def step_targets() -> list[StepTarget]:
    """Every GPU profile's bandwidth-bound decode step, then the measured ones."""
    fitted = [
        StepTarget(f"{name} (fit)", 1e3 / fit(profile).decode_ceiling_tok_s, "fit")
        for name, profile in PROFILES.items()
        if profile.gpu is not None and profile.model is not None
    ]
    measured = [StepTarget(f"{label} (measured)", ms, "measured") for label, ms in MEASURED_STEP_MS.items()]
    return fitted + measured


def corpus_streams(language: str, tokenizer: llguidance.LLTokenizer, config: Config) -> list[Stream]:
    """Real files of ``language`` from ``grammar_lab.corpus``, tokenized and cut to what a run replays."""
    from grammar_lab import corpus

    streams = []
    for path in corpus.files(language, config.files_per_language):
        tokens = tokenizer.tokenize_bytes(path.read_bytes())
        if len(tokens) >= config.steps:
            streams.append(Stream(path.name, tuple(tokens[: config.steps])))
    return streams


def export_streams(directory: Path, languages: Sequence[str], tokenizer: llguidance.LLTokenizer, config: Config) -> int:
    """Write ``<language>.json`` per language into ``directory``; returns the bytes written.

    Token ids, not text: they replay exactly, and the reader checks the vocabulary size matches.
    """
    directory.mkdir(parents=True, exist_ok=True)
    written = 0
    for language in languages:
        streams = corpus_streams(language, tokenizer, config)
        body = {
            "language": language,
            "vocab_size": tokenizer.vocab_size,
            "steps": config.steps,
            "streams": [{"name": s.name, "tokens": list(s.tokens)} for s in streams],
        }
        path = directory / f"{language}.json"
        path.write_text(json.dumps(body, separators=(",", ":")) + "\n")
        written += path.stat().st_size
    return written


def load_streams(directory: Path, language: str, tokenizer: llguidance.LLTokenizer, steps: int) -> list[Stream]:
    """Streams exported by ``export_streams``; refuses another vocabulary or too short streams."""
    body = json.loads((directory / f"{language}.json").read_text())
    if body["vocab_size"] != tokenizer.vocab_size:
        raise ValueError(f"{directory}: exported for a vocabulary of {body['vocab_size']}, not {tokenizer.vocab_size}")
    if body["steps"] < steps:
        raise ValueError(f"{directory}: streams of {body['steps']} tokens, {steps} steps asked for")
    return [Stream(s["name"], tuple(s["tokens"][:steps])) for s in body["streams"]]


# ------------------------------------------------------------------------------------------ matchers


def new_cache(tokenizer: llguidance.LLTokenizer) -> CompiledGrammarCache:
    """One engine's cache, with room for the largest batch's matchers."""
    return CompiledGrammarCache(max_grammars=8, max_bytes=1 << 24, max_idle=256, vocab_size=tokenizer.vocab_size)


def build_matchers(
    compiled: str, tokenizer: llguidance.LLTokenizer, count: int, cache: CompiledGrammarCache | None
) -> list[llguidance.LLMatcher]:
    """``count`` matchers in the start state: fresh builds on a pool (vLLM compiles on one), or from the
    plugin's cache (idle warm matchers earlier cells gave back, compiled when none is idle)."""

    def build(text: str) -> llguidance.LLMatcher:
        return llguidance.LLMatcher(tokenizer, text, log_level=0)

    if cache is not None:
        return [cache.matcher(compiled, build) for _ in range(count)]
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        return list(pool.map(build, [compiled] * count))


def setup_times(compiled: str, tokenizer: llguidance.LLTokenizer, config: Config) -> dict[str, Any]:
    """Constraint setup per request (the matcher, then its first mask), cache off and on, in ms.

    The cache's first request compiles (no idle matcher yet): reported apart as ``miss``; each request
    gives its matcher back when it ends, so the later ones reuse it.
    """
    scratch = llguidance_torch.allocate_token_bitmask(1, tokenizer.vocab_size)
    cache = new_cache(tokenizer)

    def request(get: Callable[[], llguidance.LLMatcher]) -> tuple[float, float]:
        t0 = time.perf_counter()
        matcher = get()
        t1 = time.perf_counter()
        llguidance_torch.fill_next_token_bitmask(matcher, scratch, 0)
        elapsed = time.perf_counter() - t1
        cache.give_back(compiled, matcher)  # the request ends: the next one of this grammar reuses it
        return t1 - t0, elapsed

    fresh = [request(lambda: build_matchers(compiled, tokenizer, 1, None)[0]) for _ in range(config.setup_requests)]
    miss = request(lambda: build_matchers(compiled, tokenizer, 1, cache)[0])
    hits = [request(lambda: build_matchers(compiled, tokenizer, 1, cache)[0]) for _ in range(config.setup_requests)]
    return {"off": _setup_summary(fresh), "on": _setup_summary(hits), "on_miss": _setup_summary([miss])}


def _setup_summary(samples: list[tuple[float, float]]) -> dict[str, float]:
    setup = [s for s, _ in samples]
    total = [s + f for s, f in samples]
    return {
        "n": len(samples),
        "setup_p50_ms": _ms(percentile(setup, 50)),
        "setup_max_ms": _ms(max(setup)),
        "with_first_mask_p50_ms": _ms(percentile(total, 50)),
        "with_first_mask_max_ms": _ms(max(total)),
    }


# ------------------------------------------------------------------------------------------ the step


def serial_fill(rows: list[tuple[llguidance.LLMatcher, int]], bitmask: torch.Tensor) -> None:
    """vLLM 0.32 as shipped: one ``fill_next_token_bitmask`` after another on the engine thread."""
    for matcher, row in rows:
        llguidance_torch.fill_next_token_bitmask(matcher, bitmask, row)


def timed_serial_fill(rows: list[tuple[llguidance.LLMatcher, int]], bitmask: torch.Tensor, times: CellTimes) -> None:
    """The serial fill, timing each mask, so that `schedules` can tell what threads could make of them."""
    durations = []
    for matcher, row in rows:
        t0 = time.perf_counter()
        llguidance_torch.fill_next_token_bitmask(matcher, bitmask, row)
        durations.append(time.perf_counter() - t0)
    times.masks.append(durations)


def makespan(durations: Sequence[float], threads: int) -> float:
    """Greedy list scheduling: each mask in turn goes to the thread that frees up first."""
    finish = [0.0] * threads
    for duration in durations:
        heapq.heapreplace(finish, finish[0] + duration)
    return max(finish)


def schedules(masks: list[list[float]], threads: int) -> dict[str, dict[str, float]]:
    """What `threads` threads could make of a serial cell's masks, if each mask cost what it did alone.

    floor: the longer of the costliest mask and the even share, which no schedule beats (a mask is
    never split across threads); row order: masks taken in batch order as they free up, as a
    work-stealing pool roughly does; costliest first: the same with the masks sorted by cost, which
    needs their costs before they are computed. Against the threaded cells' measured fill, the gap
    to "row order" is what threads add to each mask (contention), the gap from it to the floor what
    scheduling loses.
    """
    return {
        "floor": _p50_p99([max(max(step), sum(step) / threads) for step in masks]),
        "row_order": _p50_p99([makespan(step, threads) for step in masks]),
        "costliest_first": _p50_p99([makespan(sorted(step, reverse=True), threads) for step in masks]),
    }


def check_against_serial(rows: list[tuple[llguidance.LLMatcher, int]], bitmask: torch.Tensor, step: int) -> None:
    """Fill the same matchers serially (a fill leaves the state as it was) and compare every bit."""
    expected = torch.empty_like(bitmask)
    serial_fill(rows, expected)
    if not torch.equal(expected, bitmask):
        differing = sorted({int(r) for r in (expected != bitmask).nonzero()[:, 0]})
        raise GuardMismatch(f"step {step}: threaded fill differs from the serial fill in rows {differing[:8]}")


def run_cell(
    matchers: list[llguidance.LLMatcher],
    streams: list[Stream],
    filler: Filler | None,
    config: Config,
    steps: int,
    deadline: float,
    vocab_size: int,
) -> CellTimes:
    """Replay ``steps`` engine steps: consume last step's tokens, then fill all masks.

    ``filler`` None is the serial fill; otherwise the first ``guard_steps`` are checked against it.
    Stops after ``min_steps`` once ``deadline`` (perf_counter) has passed.
    """
    batch = len(matchers)
    bitmask = llguidance_torch.allocate_token_bitmask(batch, vocab_size)
    rows = [(matcher, row) for row, matcher in enumerate(matchers)]
    times = CellTimes()
    for step in range(steps):
        if step >= config.min_steps and time.perf_counter() > deadline:
            break
        t0 = time.perf_counter()
        if step:
            for row, matcher in enumerate(matchers):
                times.rejected += not matcher.consume_token(streams[row % len(streams)].tokens[step - 1])
        t1 = time.perf_counter()
        c1 = time.process_time()
        if filler is None:
            timed_serial_fill(rows, bitmask, times)
        else:
            filler.fill(rows, bitmask)
        times.fill_cpu.append(time.process_time() - c1)
        times.fill.append(time.perf_counter() - t1)
        times.consume.append(t1 - t0)
        if filler is not None and batch > 1 and step < config.guard_steps:
            check_against_serial(rows, bitmask, step)
            times.guarded_steps += 1
    return times


def _ms(seconds: float) -> float:
    return round(seconds * 1e3, 3)


def _p50_p99(seconds: list[float]) -> dict[str, float]:
    return {"p50_ms": _ms(percentile(seconds, 50)), "p99_ms": _ms(percentile(seconds, 99))}


def ratio(forward_ms: float, engine_ms: float) -> float:
    """Throughput kept with async scheduling: the step is the longer of forward and engine CPU."""
    return round(forward_ms / max(forward_ms, engine_ms), 3)


def cell_result(
    times: CellTimes, batch: int, threads: int, config: Config, targets: list[StepTarget]
) -> dict[str, Any]:
    steps = [c + f for c, f in zip(times.consume, times.fill, strict=True)]
    step = _p50_p99(steps)
    result: dict[str, Any] = {
        "steps": len(steps),
        "cut": len(steps) < config.steps,
        "rejected_tokens": times.rejected,
        "guarded_steps": times.guarded_steps,
        "consume": _p50_p99(times.consume),
        "fill": _p50_p99(times.fill),
        "step": step,
        "fill_cpu_mean_ms": _ms(sum(times.fill_cpu) / len(steps)),
        # Only a serial fill's wall is the masks' own CPU: threads overlap and contend.
        "mask_cpu_per_seq_ms": _ms(sum(times.fill) / len(steps) / batch) if threads == 1 else None,
        "largest_mask": _p50_p99([max(step) for step in times.masks]) if times.masks else None,
        "schedules_by_threads": {t: schedules(times.masks, t) for t in sorted({*config.threads, *FILL_GOALS_MS} - {1})}
        if times.masks
        else None,
    }
    result["ratio"] = {
        t.label: {"p50": ratio(t.forward_ms, step["p50_ms"]), "p99": ratio(t.forward_ms, step["p99_ms"])}
        for t in targets
    }
    return result


# ------------------------------------------------------------------------------------------ the sweep


@dataclass(frozen=True)
class Cell:
    grammar: str
    cache: bool
    batch: int
    threads: int


def cells(names: Sequence[str], config: Config) -> list[Cell]:
    """Serial first within each B: its masks' CPU is the yardstick of the threaded ones."""
    return [
        Cell(name, cache, batch, threads)
        for name in names
        for cache in config.caches
        for batch in config.batch_sizes
        for threads in sorted(config.threads)
    ]


def deadlines(todo: list[Cell], config: Config, started: float) -> Iterator[tuple[Cell, float]]:
    """Each cell's deadline: its share of the budget left, in proportion to B (work per step)."""
    weight_left = sum(cell.batch for cell in todo)
    for cell in todo:
        left = config.budget_s - (time.perf_counter() - started)
        yield cell, time.perf_counter() + max(0.0, left) * cell.batch / weight_left
        weight_left -= cell.batch


def sweep(
    names: Sequence[str],
    streams: dict[str, list[Stream]],
    tokenizer: llguidance.LLTokenizer,
    config: Config,
    log: Log,
    make_filler: Callable[[int], Filler] = ParallelMaskFiller,
) -> list[dict[str, Any]]:
    """Every cell, one engine (one compiled-grammar cache) per grammar.

    Only the first cell of a grammar x cache x B (the serial one) is cut by the budget; the threaded
    cells after it replay exactly as many steps. Files' first tokens are often a licence comment,
    cheap to mask, so cells cut at different steps would not be comparable.
    """
    targets = step_targets()
    compiled = {name: llguidance.grammar_from("lark", grammars.load(name)) for name in names}
    caches = {name: new_cache(tokenizer) for name in names}
    results = []
    steps_of: dict[tuple[str, bool, int], int] = {}
    started = time.perf_counter()
    for cell, deadline in deadlines(cells(names, config), config, started):
        key = (cell.grammar, cell.cache, cell.batch)
        language = grammars.get_info(cell.grammar).language
        t0 = time.perf_counter()
        cache = caches[cell.grammar] if cell.cache else None
        matchers = build_matchers(compiled[cell.grammar], tokenizer, cell.batch, cache)
        matchers_s = time.perf_counter() - t0
        filler = None if cell.threads == 1 else make_filler(cell.threads)
        try:
            steps, until = (steps_of[key], float("inf")) if key in steps_of else (config.steps, deadline)
            times = run_cell(matchers, streams[language], filler, config, steps, until, tokenizer.vocab_size)
            steps_of.setdefault(key, len(times.fill))
        finally:
            if filler is not None:
                filler.close()
            if cache is not None:  # the cell's requests end; the next cell of this grammar reuses them
                for matcher in matchers:
                    cache.give_back(compiled[cell.grammar], matcher)
        measured = cell_result(times, cell.batch, cell.threads, config, targets)
        result = {**asdict(cell), "matchers_s": round(matchers_s, 3), **measured}
        results.append(result)
        log(
            f"  {cell.grammar} cache {'on' if cell.cache else 'off'} B={cell.batch} threads={cell.threads}: "
            f"{result['steps']} steps{' (cut)' if result['cut'] else ''}, fill p50 {result['fill']['p50_ms']:.2f} ms, "
            f"step p99 {result['step']['p99_ms']:.2f} ms"
        )
    return results


# ------------------------------------------------------------------------------------------ results


def summary(data: dict[str, Any]) -> dict[str, Any]:
    """Per grammar at B=64 (or the largest B run), cache on: the plugin's path, against the goals."""
    config = data["config"]
    batch = 64 if 64 in config["batch_sizes"] else max(config["batch_sizes"])
    cache = True in config["caches"]
    rows: dict[str, Any] = {}
    for name, setup in data["setup"].items():
        picked = {
            c["threads"]: c
            for c in data["cells"]
            if c["grammar"] == name and c["batch"] == batch and c["cache"] == cache
        }
        fill = {threads: c["fill"]["p50_ms"] for threads, c in picked.items()}
        rows[name] = {
            "batch": batch,
            "max_steps": config["steps"],
            "cache": cache,
            "fill_p50_ms_by_threads": fill,
            "steps_by_threads": {threads: c["steps"] for threads, c in picked.items()},
            "goals": {
                f"fill <= {goal:g} ms at {threads} threads": None if threads not in fill else fill[threads] <= goal
                for threads, goal in FILL_GOALS_MS.items()
            },
            "mask_cpu_per_seq_ms": picked[1]["mask_cpu_per_seq_ms"] if 1 in picked else None,
            # from the serial cell's masks: {threads: {"floor" | "row_order" | "costliest_first": p50 ms}}
            "schedules_p50_ms_by_threads": {
                threads: {name: value["p50_ms"] for name, value in schedule.items()}
                for threads, schedule in (picked[1].get("schedules_by_threads") or {}).items()
            }
            if 1 in picked
            else {},
            # The process's CPU clock: the same figure where other work shares the cores.
            "mask_process_cpu_per_seq_ms": round(picked[1]["fill_cpu_mean_ms"] / batch, 3) if 1 in picked else None,
            "setup_off": setup["off"],
            "setup_on": setup["on"],
            f"setup_on_with_first_mask <= {SETUP_GOAL_MS:g} ms": setup["on"]["with_first_mask_p50_ms"] <= SETUP_GOAL_MS,
        }
    return rows


def _yes_no(value: bool | None) -> str:
    return "not run" if value is None else ("yes" if value else "**no**")


def _fill_cell(row: dict[str, Any], threads: int) -> str:
    """The fill p50, with the steps it comes from when the budget cut the cell short."""
    if threads not in row["fill_p50_ms_by_threads"]:
        return "—"
    steps = row["steps_by_threads"][threads]
    return f"{row['fill_p50_ms_by_threads'][threads]:.2f}" + (f" ({steps} steps)" if steps < row["max_steps"] else "")


def _schedules_cell(row: dict[str, Any], threads: int) -> str:
    by_threads = row.get("schedules_p50_ms_by_threads") or {}  # results from before this column have none
    schedule = by_threads.get(threads, by_threads.get(str(threads)))  # JSON turns the thread counts into strings
    if not schedule:
        return "—"
    return f"{schedule['floor']:.2f} / {schedule['row_order']:.2f} / {schedule['costliest_first']:.2f}"


def summary_markdown(data: dict[str, Any]) -> str:
    threads = sorted(data["config"]["threads"])
    rows = []
    for name, s in data["summary"].items():
        on, off = s["setup_on"], s["setup_off"]
        rows.append([
            f"`{name}`",
            *(_fill_cell(s, t) for t in threads),
            *(_yes_no(v) for v in s["goals"].values()),
            *(_schedules_cell(s, t) for t in FILL_GOALS_MS),
            "—" if s["mask_cpu_per_seq_ms"] is None else f"{s['mask_cpu_per_seq_ms']:.3f}",
            "—" if s["mask_process_cpu_per_seq_ms"] is None else f"{s['mask_process_cpu_per_seq_ms']:.3f}",
            f"{off['setup_p50_ms']:.1f} / {off['setup_max_ms']:.1f} (+ first mask {off['with_first_mask_p50_ms']:.1f})",
            f"{on['setup_p50_ms']:.3f} / {on['setup_max_ms']:.3f} (+ first mask {on['with_first_mask_p50_ms']:.2f})",
        ])  # fmt: skip
    first = next(iter(data["summary"].values()), {"batch": "?", "cache": True})
    headers = [
        "grammar",
        *(f"fill p50, {t} thread{'s' * (t > 1)} (ms)" for t in threads),
        *(f"≤ {goal:g} ms at {t} threads" for t, goal in FILL_GOALS_MS.items()),
        *(f"{t} threads from the serial masks: floor / row order / costliest first, p50 (ms)" for t in FILL_GOALS_MS),
        "mask CPU per sequence (ms)",
        "same, process CPU clock (ms)",
        "setup per request, cache off: p50 / max (ms)",
        "cache on: p50 / max (ms)",
    ]
    return (
        f"Summary: B = {first['batch']}, cache {'on' if first['cache'] else 'off'} (the plugin's path); mask CPU per "
        "sequence from the serial cell: its fill wall / B, and its process CPU time / B (the two differ where "
        "other work shares the cores). Setup: the matcher (a build, or a reused one from the cache), then its first "
        f"mask; the issue's goal is ≤ {SETUP_GOAL_MS:g} ms with the cache. From the serial masks: each mask of "
        "the serial cell timed alone, then per step the longer of the costliest mask and the even share over "
        "the threads (floor: no schedule fills faster, a mask is never split), greedy scheduling in batch "
        "order (row order, as a work-stealing pool roughly does) and with the costliest masks first.\n\n"
        + md_table(headers, rows)
    )


def _p50_p99_cell(value: dict[str, float] | None) -> str:
    return "—" if not value else f"{value['p50_ms']:.2f} / {value['p99_ms']:.2f}"


def grammar_markdown(name: str, data: dict[str, Any]) -> str:
    targets = [t["label"] for t in data["targets"]]
    rows = []
    for c in (c for c in data["cells"] if c["grammar"] == name):
        rows.append([
            "on" if c["cache"] else "off",
            c["batch"],
            c["threads"],
            f"{c['steps']}{' cut' if c['cut'] else ''}",
            f"{c['consume']['p50_ms']:.2f}",
            f"{c['fill']['p50_ms']:.2f} / {c['fill']['p99_ms']:.2f}",
            f"{c['step']['p50_ms']:.2f} / {c['step']['p99_ms']:.2f}",
            f"{c['fill_cpu_mean_ms']:.2f}",
            "—" if c["mask_cpu_per_seq_ms"] is None else f"{c['mask_cpu_per_seq_ms']:.3f}",
            _p50_p99_cell(c.get("largest_mask")),
            *(f"{c['ratio'][t]['p50']:.2f} / {c['ratio'][t]['p99']:.2f}" for t in targets),
        ])  # fmt: skip
    rejected = sum(c["rejected_tokens"] for c in data["cells"] if c["grammar"] == name)
    headers = [
        "cache",
        "B",
        "threads",
        "steps",
        "consume p50 (ms)",
        "fill p50 / p99 (ms)",
        "step p50 / p99 (ms)",
        "fill CPU per step (ms)",
        "mask CPU per sequence (ms)",
        "costliest mask per step p50 / p99 (ms)",
        *(f"ratio {t} p50 / p99" for t in targets),
    ]
    note = f" {rejected} replayed tokens were rejected by the grammar." if rejected else ""
    return f"#### `{name}` ({data['streams'][grammars.get_info(name).language]})\n\n{md_table(headers, rows)}\n{note}"


def markdown(data: dict[str, Any]) -> str:
    targets = ", ".join(f"{t['label']} {t['forward_ms']:.1f} ms" for t in data["targets"])
    guard = data["guard"]
    parts = [
        "### Engine step (vLLM 0.32's consume + fill, serial vs the plugin's threads)\n",
        summary_markdown(data),
        "",
        f"Machine: {machine_line(data['machine'])}. {data['machine']['note']}{' ' * bool(data['machine']['note'])}"
        f"llguidance {data['versions']['llguidance']}, "
        f"torch {data['versions']['torch']}. {data['config']['steps']} steps per cell at most, budget "
        f"{data['config']['budget_s']:g} s (a serial cell over its share is cut after {data['config']['min_steps']}+ "
        "steps, and the threaded cells of its grammar, cache and B replay as many: files often open with a "
        "licence comment, cheap to mask, so only equal steps compare); the sweep took "
        f"{data['seconds']:.0f} s. Guard: {guard['steps']} steps of {guard['cells']} threaded cells "
        "bit-identical to the serial fill.",
        "",
        "Ratio = forward / max(forward, consume + fill): the throughput a GPU keeps with async scheduling, "
        f"from the step's p50 and p99. Forward steps: {targets} (fit: bandwidth-bound lower bound from "
        "app/fit.py; measured: DESIGN.md's GPU runs of the 32B model).",
        "",
        *(grammar_markdown(name, data) + "\n" for name in data["setup"]),
    ]
    return "\n".join(parts)


def resolve_streams(
    languages: Sequence[str], tokenizer: llguidance.LLTokenizer, config: Config, files: Path | None
) -> tuple[dict[str, list[Stream]], dict[str, str]]:
    """Streams per language and where they came from (the corpus here, or an exported dir)."""
    streams, sources = {}, {}
    for language in languages:
        if files is None:
            streams[language] = corpus_streams(language, tokenizer, config)
            source = "grammar_lab.corpus"
        else:
            streams[language] = load_streams(files, language, tokenizer, config.steps)
            source = f"exported files ({files.name})"
        if not streams[language]:
            raise RuntimeError(f"no {language} file of {config.steps}+ tokens to replay")
        sources[language] = f"{len(streams[language])} files from {source}"
    return streams, sources


def run(
    config: Config = Config(),
    out_dir: Path | None = None,
    log: Log = print,
    *,
    files: Path | None = None,
    tokenizer_dir: Path | None = None,
    make_filler: Callable[[int], Filler] = ParallelMaskFiller,
    note: str = "",
) -> dict[str, Any]:
    """The sweep, written to ``engine-<tag>.md/json``; ``note`` says what else ran on the machine."""
    from grammars.tokenizers import DEFAULT_TOKENIZER_DIR, qwen_tokenizer

    info = machine(note)
    started = time.perf_counter()
    tokenizer = qwen_tokenizer(tokenizer_dir or DEFAULT_TOKENIZER_DIR)
    names = list(config.grammars or grammars.names())
    streams, sources = resolve_streams(sorted({grammars.get_info(n).language for n in names}), tokenizer, config, files)
    setup = {}
    for name in names:
        setup[name] = setup_times(llguidance.grammar_from("lark", grammars.load(name)), tokenizer, config)
    sweep_started = time.perf_counter()
    results = sweep(names, streams, tokenizer, config, log, make_filler)
    guarded = [c for c in results if c["guarded_steps"]]
    data = part_results(
        "engine_step",
        info,
        config,
        versions={"llguidance": metadata.version("llguidance"), "torch": torch.__version__},
        vocab_size=tokenizer.vocab_size,
        streams=sources,
        targets=[asdict(t) for t in step_targets()],
        guard={"cells": len(guarded), "steps": sum(c["guarded_steps"] for c in guarded)},
        seconds=round(time.perf_counter() - sweep_started, 1),
        setup=setup,
        cells=results,
    )
    data["summary"] = summary(data)
    tag = config.machine_tag or f"{os.cpu_count()}core"
    write_result(f"engine-{tag}", data, markdown, out_dir)
    log(f"  total {time.perf_counter() - started:.0f} s")
    return data


def export(directory: Path, config: Config, tokenizer_dir: Path | None = None) -> int:
    """``--export-files``: the streams of every library grammar's language, for a run elsewhere."""
    from grammars.tokenizers import DEFAULT_TOKENIZER_DIR, qwen_tokenizer

    tokenizer = qwen_tokenizer(tokenizer_dir or DEFAULT_TOKENIZER_DIR)
    names = config.grammars or grammars.names()
    return export_streams(directory, sorted({grammars.get_info(n).language for n in names}), tokenizer, config)
