"""Part 2: what each library grammar costs llguidance, with the Qwen2.5 tokenizer vLLM feeds it.

Per grammar in ``grammars.names()`` (whatever exists at run time):

* **compile**: Lark text to llguidance's grammar (``grammar_from``) plus ``validate_grammar``, and
  building an ``LLMatcher`` on the Qwen tokenizer, which is what vLLM's guidance backend does per
  request; and the first mask, which builds the lexer's initial states.
* **mask time per token** along real files (``grammar_lab.corpus``): each file is replayed as if the model
  wrote it, computing the full-vocabulary token mask before every token, as vLLM does each step.
  p50 / p99 / max over all tokens of all files, and how many files replayed cleanly (every token
  allowed by its mask; long files are cut at ``max_tokens_per_file``, and a slow grammar stops after
  ``replay_seconds_per_grammar`` of mask time).
* **gateway validation** (``gateway.grammar_check.GrammarValidator``): cold (a fresh validator, so
  llguidance compiles) and cached (the verdict from its hash-keyed cache, the usual case for library
  grammars, which arrive on every request).
"""

from __future__ import annotations

import ast
import statistics
import sysconfig
import time
from collections.abc import Callable
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import llguidance

import grammars
from gateway.grammar_check import GrammarValidator

from .common import Log, machine, machine_line, md_table, part_results, summary_ms, write_result


@dataclass(frozen=True)
class Config:
    files_per_grammar: int = 12
    #: Longest file replayed, in tokens: keeps the slowest grammar within the run's time budget.
    max_tokens_per_file: int = 1500
    #: Mask-replay time per grammar; a slow grammar gets fewer files instead of stretching the run.
    replay_seconds_per_grammar: float = 15.0
    compile_repeats: int = 15
    matcher_repeats: int = 3
    cold_validations: int = 5
    cached_validations: int = 2000


QUICK = Config(
    files_per_grammar=1,
    max_tokens_per_file=100,
    compile_repeats=1,
    matcher_repeats=1,
    cold_validations=1,
    cached_validations=20,
)


def corpus_files(language: str, limit: int) -> tuple[list[tuple[str, str]], str]:
    """Up to ``limit`` (name, text) pairs of real files for ``language``, and where they came from."""
    try:
        from grammar_lab import corpus

        paths = corpus.files(language, limit)
        return [(str(p), p.read_text(encoding="utf-8")) for p in paths], "grammar_lab.corpus"
    except ImportError:
        pass
    except Exception as exc:  # a corpus that is not installed here: fall back or report none
        if language not in ("python", "json"):
            return [], f"no corpus ({type(exc).__name__}: {exc})"
    return _fallback_files(language, limit), "stdlib / site-packages"


def _fallback_files(language: str, limit: int) -> list[tuple[str, str]]:
    """Python's stdlib (top level) or JSON files in site-packages, 1-20 KB, valid for the language."""
    import json

    if language == "python":
        candidates = sorted(Path(sysconfig.get_paths()["stdlib"]).glob("*.py"))
    elif language == "json":
        candidates = sorted(Path(sysconfig.get_paths()["purelib"]).rglob("*.json"))
    else:
        return []
    found: list[tuple[str, str]] = []
    for path in candidates:
        if not 1_000 <= path.stat().st_size <= 20_000:
            continue
        try:
            text = path.read_text(encoding="utf-8")
            ast.parse(text) if language == "python" else json.loads(text)
        except (SyntaxError, ValueError, UnicodeDecodeError):
            continue
        found.append((str(path), text))
        if len(found) >= limit:
            break
    return found


def _ms(seconds: float) -> float:
    return round(seconds * 1e3, 3)


def compile_seconds(
    text: str, repeats: int, clock: Callable[[], float] = time.perf_counter
) -> tuple[list[float], list[float], str]:
    """Lark text to llguidance's grammar, then its validation, ``repeats`` times back to back: the
    seconds of each step per repeat, and the compiled grammar. ``clock`` is wall time unless a caller
    asks for CPU time (the allocator part, on a machine others share)."""
    lark, validate = [], []
    compiled = ""
    for _ in range(repeats):
        t0 = clock()
        compiled = llguidance.grammar_from("lark", text)
        t1 = clock()
        error = llguidance.LLMatcher.validate_grammar(compiled)
        t2 = clock()
        if error:
            raise RuntimeError(f"grammar does not compile: {error}")
        lark.append(t1 - t0)
        validate.append(t2 - t1)
    return lark, validate, compiled


def compile_times(
    text: str, tokenizer: llguidance.LLTokenizer, config: Config, clock: Callable[[], float] = time.perf_counter
) -> dict[str, float]:
    """Compile and validate back to back (what a server pays per new grammar, caches warm), then
    matcher builds and first masks in their own loop: interleaving them evicts the compiler's
    working set, which measured python.lark's validation at 17 ms instead of 11 ms.

    ``compile_median_ms`` is the median of each repeat's compile + validate (the medians of the two
    steps, also given, need not add up to it). The minimum is reported beside the median because
    this machine's speed is bimodal: the same loop over python.lark runs at 10-11 ms per compile for
    a while, then at 18-21 ms, switching mid-run with no steal time shown (a busy sibling
    hyperthread on the host, most likely)."""
    lark, validate, compiled = compile_seconds(text, config.compile_repeats, clock)
    build, first = [], []
    for _ in range(config.matcher_repeats):
        t2 = clock()
        matcher = llguidance.LLMatcher(tokenizer, compiled, log_level=0)
        t3 = clock()
        matcher.compute_bitmask()
        t4 = clock()
        if matcher.is_error():
            raise RuntimeError(f"grammar does not compile: {matcher.get_error()}")
        build.append(t3 - t2)
        first.append(t4 - t3)
    total = [a + b for a, b in zip(lark, validate, strict=True)]
    return {
        "lark_to_llguidance_ms": _ms(statistics.median(lark)),
        "validate_ms": _ms(statistics.median(validate)),
        "compile_median_ms": _ms(statistics.median(total)),
        "compile_min_ms": _ms(min(total)),
        "compile_max_ms": _ms(max(total)),
        "matcher_build_ms": _ms(statistics.median(build)),
        "first_mask_ms": _ms(statistics.median(first)),
    }


def replay(
    compiled: str,
    text: str,
    tokenizer: llguidance.LLTokenizer,
    max_tokens: int,
    budget_s: float = float("inf"),
    clock: Callable[[], float] = time.perf_counter,
) -> tuple[list[float], bool, int]:
    """Mask times (s) before each token of ``text`` (cut at ``max_tokens`` or after ``budget_s`` of
    mask time), whether every token replayed (and EOS, for a whole file) was allowed, and how many
    tokens were replayed."""
    matcher = llguidance.LLMatcher(tokenizer, compiled, log_level=0)
    tokens = tokenizer.tokenize_bytes(text.encode("utf-8"))
    whole = len(tokens) <= max_tokens
    tokens = [*tokens, tokenizer.eos_token] if whole else tokens[:max_tokens]
    times: list[float] = []
    spent = 0.0
    for token in tokens:
        if spent > budget_s:
            break
        started = clock()
        mask = matcher.compute_bitmask()
        times.append(clock() - started)
        spent += times[-1]
        if matcher.is_error() or not mask[token // 8] >> (token % 8) & 1:
            return times, False, len(times)
        if token != tokenizer.eos_token:
            matcher.consume_token(token)
    return times, True, len(times)


def validation_times(text: str, config: Config) -> dict[str, float]:
    cold = []
    for _ in range(config.cold_validations):
        validator = GrammarValidator(16)
        started = time.perf_counter()
        message = validator.error_for("grammar", text)
        cold.append(time.perf_counter() - started)
        if message:
            raise RuntimeError(f"the gateway rejects a library grammar: {message}")
    validator = GrammarValidator(16)
    validator.error_for("grammar", text)
    cached = []
    for _ in range(config.cached_validations):
        started = time.perf_counter()
        validator.error_for("grammar", text)
        cached.append(time.perf_counter() - started)
    return {
        "cold_ms": _ms(statistics.median(cold)),
        "cached_p50_us": round(statistics.median(cached) * 1e6, 2),
        "cached_p99_us": round(sorted(cached)[int(len(cached) * 0.99) - 1 if len(cached) > 1 else 0] * 1e6, 2),
    }


def measure_grammar(name: str, tokenizer: llguidance.LLTokenizer, config: Config) -> dict[str, Any]:
    text = grammars.load(name)
    language = grammars.get_info(name).language
    result: dict[str, Any] = {"language": language, "grammar_bytes": len(text.encode())}
    result["compile"] = compile_times(text, tokenizer, config)
    result["gateway_validation"] = validation_times(text, config)
    files, source = corpus_files(language, config.files_per_grammar)
    compiled = llguidance.grammar_from("lark", text)
    mask_times: list[float] = []
    accepted = 0
    tokens = 0
    replayed = 0
    for _path, body in files:
        if replayed and sum(mask_times) > config.replay_seconds_per_grammar:
            break
        budget = config.replay_seconds_per_grammar - sum(mask_times)
        times, ok, count = replay(compiled, body, tokenizer, config.max_tokens_per_file, budget)
        mask_times += times
        accepted += ok
        tokens += count
        replayed += 1
    result["corpus"] = {"source": source, "files": replayed, "accepted": accepted, "tokens": tokens}
    result["mask"] = summary_ms(mask_times) if mask_times else None
    return result


def markdown(data: dict[str, Any]) -> str:
    rows = []
    for name, r in data["grammars"].items():
        c, v, corpus, mask = r["compile"], r["gateway_validation"], r["corpus"], r["mask"]
        rows.append([
            f"`{name}`",
            f"{r['grammar_bytes'] / 1000:.1f}",
            f"{c['compile_median_ms']:.1f} / {c['compile_min_ms']:.1f} / {c['compile_max_ms']:.1f}",
            f"{c['matcher_build_ms']:.1f}",
            f"{c['first_mask_ms']:.1f}",
            "—" if mask is None else f"{mask['p50_ms']:.3f} / {mask['p99_ms']:.2f} / {mask['max_ms']:.1f}",
            f"{corpus['tokens']:,} tokens, {corpus['accepted']}/{corpus['files']} files clean",
            f"{v['cold_ms']:.1f}",
            f"{v['cached_p50_us']:.1f} / {v['cached_p99_us']:.1f}",
        ])  # fmt: skip
    table = md_table(
        [
            "grammar",
            "KB",
            f"compile + validate, median / min / max of {data['config']['compile_repeats']} (ms)",
            "matcher build, Qwen (ms)",
            "first mask (ms)",
            "mask per token p50 / p99 / max (ms)",
            "replayed",
            "gateway validation cold (ms)",
            "cached p50 / p99 (µs)",
        ],
        rows,
    )
    return (
        "### Grammar engine (llguidance, Qwen2.5 tokenizer)\n\n"
        f"{table}\n\nMachine: {machine_line(data['machine'])}. llguidance {data['versions']['llguidance']}. "
        f"Files of 1-20 KB from {', '.join(sorted({r['corpus']['source'] for r in data['grammars'].values()}))}, "
        f"at most {data['config']['files_per_grammar']} per grammar and "
        f"{data['config']['max_tokens_per_file']} tokens per file.\n"
    )


def run(config: Config = Config(), out_dir: Path | None = None, log: Log = print) -> dict[str, Any]:
    from grammars.tokenizers import qwen_tokenizer

    info = machine()
    started = time.perf_counter()
    tokenizer = qwen_tokenizer()
    tokenizer_s = time.perf_counter() - started
    results: dict[str, Any] = {}
    for name in grammars.names():
        t0 = time.perf_counter()
        try:
            results[name] = measure_grammar(name, tokenizer, config)
        except RuntimeError as exc:  # a grammar being written right now may not compile yet
            log(f"  {name}: skipped ({exc})")
            continue
        mask = results[name]["mask"]
        log(
            f"  {name}: {time.perf_counter() - t0:.1f} s"
            + ("" if mask is None else f", mask p50 {mask['p50_ms']:.3f} ms over {mask['n']} tokens")
        )
    data = part_results(
        "grammar_engine",
        info,
        config,
        versions={"llguidance": metadata.version("llguidance")},
        tokenizer_load_s=round(tokenizer_s, 1),
        seconds=round(time.perf_counter() - started, 1),
        grammars=results,
    )
    return write_result("grammar", data, markdown, out_dir)
