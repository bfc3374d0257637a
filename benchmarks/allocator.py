"""Part ``allocator``: llguidance's compile, matcher build and masks under glibc's malloc, jemalloc and
tcmalloc.

vLLM compiles the grammar and builds its matcher for every request, so their cost is time to first
token, and both are made of many small allocations. Whether to preload another allocator into the
serving process rests on this comparison. Each allocator found on this machine (``ALLOCATORS``:
glibc's, and Debian's ``libjemalloc2`` and ``libtcmalloc-minimal4``, ``apt-get install libjemalloc2
libtcmalloc-minimal4``; a missing one is skipped with a note) runs the same child process under
``LD_PRELOAD``. Rounds alternate the allocators (the order rotates each round), so load bursts hit
all alike. A child, per library grammar:

* compiles it ``compile_repeats`` times in the fresh process, before anything else (**fresh**);
* loads the Qwen tokenizer and replays ``files`` corpus files of at most ``tokens_per_file`` tokens,
  computing the mask before every token (**replay**, total mask seconds);
* compiles it again (**after replay**: a process that holds the tokenizer and has computed masks, as
  a vLLM server has, and as part 2 measures) and builds ``matcher_repeats`` matchers.

Compile is Lark text to llguidance's grammar plus its validation; every figure is the median over a
child's repeats, in CPU time of the child process (``time.process_time``): on a machine others share,
wall time would mostly measure the wait for a core. With ``perf`` on the machine, one more child per
grammar compiles it over and over under ``perf record`` with glibc's allocator, recording
``perf_seconds`` after a ``PERF_DELAY_MS`` delay that leaves out the start-up, and the share of its
samples in glibc's malloc and free (``MALLOC_SYMBOLS``) is reported.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

from .common import Log, machine, machine_line, md_table, part_results, percentile, write_result

REPO = Path(__file__).resolve().parents[1]
#: What the child times with: its process's CPU time, all threads.
CLOCK = time.process_time
LIB_DIR = Path("/usr/lib/x86_64-linux-gnu")
#: Allocator name -> the library to preload (None: glibc's own malloc).
ALLOCATORS: dict[str, Path | None] = {
    "glibc": None,
    "jemalloc": LIB_DIR / "libjemalloc.so.2",
    "tcmalloc": LIB_DIR / "libtcmalloc_minimal.so.4",
}
#: perf starts recording this long after the profiled child starts: its imports are not the compile.
PERF_DELAY_MS = 1500
#: glibc's allocator functions in a perf profile (malloc, free, realloc and their internals).
MALLOC_SYMBOLS = re.compile(r"malloc|free|realloc|calloc|memalign|unlink_chunk|tcache|arena|consolidate")


@dataclass(frozen=True)
class Config:
    rounds: int = 2
    compile_repeats: int = 15
    matcher_repeats: int = 3
    files: int = 3
    tokens_per_file: int = 600
    perf_seconds: float = 4.0
    #: Library grammars to measure (empty: all of ``grammars.names()``).
    grammars: tuple[str, ...] = ()


QUICK = Config(
    rounds=1,
    compile_repeats=2,
    matcher_repeats=1,
    files=1,
    tokens_per_file=40,
    perf_seconds=0.1,
    grammars=("json",),
)


def available() -> tuple[dict[str, Path | None], dict[str, str]]:
    """The allocators this machine has, and a note for each one it lacks."""
    found: dict[str, Path | None] = {}
    missing: dict[str, str] = {}
    for name, library in ALLOCATORS.items():
        if library is None or library.is_file():
            found[name] = library
        else:
            missing[name] = f"{library} not found (apt-get install libjemalloc2 libtcmalloc-minimal4)"
    return found, missing


# ------------------------------------------------------------------------------------ the child


def _preloaded() -> list[str]:
    """The allocator libraries mapped into this process: proof that ``LD_PRELOAD`` took."""
    maps = Path("/proc/self/maps").read_text()
    return sorted({name for name in ("jemalloc", "tcmalloc") if name in maps})


def child(config: Config, names: Sequence[str]) -> dict[str, Any]:
    """What one child process measures (see the module's docstring), per grammar."""
    import grammars

    from . import grammar_engine
    from .grammar_engine import compile_seconds, compile_times, corpus_files, replay

    texts = {name: grammars.load(name) for name in names}
    fresh = {}
    for name, text in texts.items():
        lark, validate, _ = compile_seconds(text, config.compile_repeats, CLOCK)
        fresh[name] = statistics.median(a + b for a, b in zip(lark, validate, strict=True)) * 1e3
    from grammars.tokenizers import qwen_tokenizer

    tokenizer = qwen_tokenizer()
    results: dict[str, Any] = {}
    for name, text in texts.items():
        compiled = compile_seconds(text, 1)[2]
        files, _source = corpus_files(grammars.get_info(name).language, config.files)
        masks: list[float] = []
        for _path, body in files:
            masks += replay(compiled, body, tokenizer, config.tokens_per_file, clock=CLOCK)[0]
        repeats = grammar_engine.Config(compile_repeats=config.compile_repeats, matcher_repeats=config.matcher_repeats)
        after = compile_times(text, tokenizer, repeats, CLOCK)
        results[name] = {
            "compile_fresh_ms": round(fresh[name], 3),
            "compile_after_replay_ms": after["compile_median_ms"],
            "matcher_build_ms": after["matcher_build_ms"],
            "replay_s": round(sum(masks), 3),
            "replay_tokens": len(masks),
            "mask_p50_ms": round(percentile(masks, 50) * 1e3, 4) if masks else None,
        }
    return {"preloaded": _preloaded(), "grammars": results}


def compile_only(name: str, until_s: float, started: float) -> None:
    """Compiles grammar ``name`` until ``until_s`` after ``started`` (the process profiled under perf)."""
    import grammars

    from .grammar_engine import compile_seconds

    text = grammars.load(name)
    while time.monotonic() - started < until_s:
        compile_seconds(text, 1)


def _run_child(arguments: dict[str, Any], library: Path | None, prefix: Sequence[str] = ()) -> str:
    env = {key: value for key, value in os.environ.items() if key != "LD_PRELOAD"}
    if library is not None:
        env["LD_PRELOAD"] = str(library)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    argv = [*prefix, sys.executable, "-m", "benchmarks.allocator", json.dumps(arguments)]
    done = subprocess.run(argv, cwd=REPO, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"allocator child failed ({done.returncode}): {done.stderr[-2000:]}")
    return done.stdout


# ------------------------------------------------------------------------------------ perf


def perf_usable() -> str:
    """Empty when ``perf record`` works here, else why not."""
    if shutil.which("perf") is None:
        return "perf not installed (apt-get install linux-perf)"
    with tempfile.TemporaryDirectory() as tmp:
        done = subprocess.run(
            ["perf", "record", "-q", "-o", f"{tmp}/probe.data", "--", "true"],
            capture_output=True,
            text=True,
            check=False,
        )
    return "" if done.returncode == 0 else f"perf record fails: {done.stderr.strip()[-300:]}"


def malloc_share(report: str) -> float:
    """Percent of samples in glibc's allocator, from ``perf report --sort dso,symbol`` text."""
    total = 0.0
    for line in report.splitlines():
        match = re.match(r"\s*([\d.]+)%\s+(\S+)\s+\[\.\]\s+(\S+)", line)
        if match and match[2].startswith("libc.so") and MALLOC_SYMBOLS.search(match[3]):
            total += float(match[1])
    return round(total, 1)


def perf_profile(name: str, seconds: float) -> float:
    """The malloc share of ``seconds`` of compiling grammar ``name`` in a child, glibc's malloc."""
    with tempfile.TemporaryDirectory() as tmp:
        data = f"{tmp}/perf.data"
        record = ["perf", "record", "-q", "-F", "1999", "-D", str(PERF_DELAY_MS), "-o", data, "--"]
        _run_child({"compile_only": name, "until_s": PERF_DELAY_MS / 1e3 + seconds}, None, prefix=record)
        report = subprocess.run(
            ["perf", "report", "-i", data, "--stdio", "--no-children", "--sort", "dso,symbol"],
            capture_output=True,
            text=True,
            check=True,
        )
    return malloc_share(report.stdout)


# ------------------------------------------------------------------------------------ the part


def _median(values: list[float]) -> float:
    return round(statistics.median(values), 3)


def markdown(data: dict[str, Any]) -> str:
    rows = []
    for name, by_allocator in data["grammars"].items():
        glibc = by_allocator.get("glibc")
        for allocator, r in by_allocator.items():
            rounds = r["rounds"]

            def cell(key: str, digits: int = 1, rounds: list[dict[str, Any]] = rounds) -> str:
                return " / ".join(f"{x[key]:.{digits}f}" for x in rounds)

            ratio = "—" if glibc is None else f"{r['compile_after_replay_ms'] / glibc['compile_after_replay_ms']:.2f}x"
            share = data["perf"]["malloc_share_pct"].get(name) if allocator == "glibc" else None
            rows.append([
                f"`{name}`",
                allocator,
                cell("compile_fresh_ms"),
                cell("compile_after_replay_ms"),
                ratio,
                cell("matcher_build_ms"),
                cell("replay_s", 2),
                "—" if share is None else f"{share:.0f}%",
            ])  # fmt: skip
    table = md_table(
        [
            "grammar",
            "allocator",
            "compile, fresh process (ms)",
            "compile after replay (ms)",
            "after replay vs glibc (median)",
            "matcher build (ms)",
            "mask replay total (s)",
            "perf: compile samples in malloc/free",
        ],
        rows,
    )
    config = data["config"]
    missing = "".join(f" Skipped {name}: {why}." for name, why in data["missing"].items())
    perf = data["perf"]["note"] or (
        f"perf: {config['perf_seconds']:g} s of compiles per grammar in a child with glibc's malloc (recording from "
        f"{PERF_DELAY_MS / 1e3:g} s after its start), the share of samples in its malloc and free."
    )
    return (
        "### Allocators: llguidance under glibc, jemalloc and tcmalloc (LD_PRELOAD)\n\n"
        f"{table}\n\nCPU time of the child process. One value per round (rounds alternate the allocators); "
        "each is the median of "
        f"{config['compile_repeats']} compiles or {config['matcher_repeats']} matcher builds in one child "
        f"process; the replay is {config['files']} corpus files of at most {config['tokens_per_file']} tokens. "
        f"{perf}{missing}\n\nMachine: {machine_line(data['machine'])}; load average at the end "
        f"{', '.join(f'{v:.2f}' for v in data['machine']['loadavg_after'])}. "
        f"llguidance {data['versions']['llguidance']}.\n"
    )


def run(config: Config = Config(), out_dir: Path | None = None, log: Log = print) -> dict[str, Any]:
    import grammars

    info = machine()
    started = time.perf_counter()
    names = list(config.grammars or grammars.names())
    found, missing = available()
    for allocator, why in missing.items():
        log(f"  {allocator}: skipped ({why})")
    per_round: dict[str, list[dict[str, Any]]] = {allocator: [] for allocator in found}
    order = list(found)
    for index in range(config.rounds):
        rotated = order[index % len(order) :] + order[: index % len(order)]
        for allocator in rotated:
            t0 = time.perf_counter()
            arguments = {"config": asdict(config), "grammars": names}
            result = json.loads(_run_child(arguments, found[allocator]).strip().splitlines()[-1])
            expected = [] if allocator == "glibc" else [allocator]
            if result["preloaded"] != expected:
                raise RuntimeError(f"{allocator}: the child has {result['preloaded']} mapped, not {expected}")
            per_round[allocator].append(result["grammars"])
            log(f"  round {index + 1}, {allocator}: {time.perf_counter() - t0:.1f} s")
    results: dict[str, Any] = {}
    for name in names:
        results[name] = {}
        for allocator, rounds in per_round.items():
            mine = [r[name] for r in rounds]
            results[name][allocator] = {
                "rounds": mine,
                "compile_fresh_ms": _median([r["compile_fresh_ms"] for r in mine]),
                "compile_after_replay_ms": _median([r["compile_after_replay_ms"] for r in mine]),
                "matcher_build_ms": _median([r["matcher_build_ms"] for r in mine]),
                "replay_s": _median([r["replay_s"] for r in mine]),
            }
    note = perf_usable()
    shares: dict[str, float] = {}
    if not note:
        for name in names:
            shares[name] = perf_profile(name, config.perf_seconds)
            log(f"  perf, {name}: {shares[name]:.1f}% of compile samples in glibc's malloc/free")
    data = part_results(
        "allocator",
        info,
        config,
        versions={"llguidance": metadata.version("llguidance")},
        libraries={name: None if library is None else str(library) for name, library in found.items()},
        missing=missing,
        perf={"note": note, "malloc_share_pct": shares},
        seconds=round(time.perf_counter() - started, 1),
        grammars=results,
    )
    return write_result("allocator", data, markdown, out_dir)


def _main(argument: str) -> None:
    """The child: ``python -m benchmarks.allocator JSON``, one JSON line on stdout."""
    started = time.monotonic()
    arguments = json.loads(argument)
    if "compile_only" in arguments:
        compile_only(arguments["compile_only"], arguments["until_s"], started)
        return
    print(json.dumps(child(Config(**{**arguments["config"], "grammars": ()}), arguments["grammars"])))


if __name__ == "__main__":
    _main(sys.argv[1])
