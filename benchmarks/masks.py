"""Part 8: where mask time goes along real files, per library grammar.

Each file of the grammar's language (the dev corpus, as the grammar part reads it) is replayed as if
the model wrote it, through a fresh ``LLMatcher`` per file on the Qwen tokenizer, as vLLM's guidance
backend builds one per request: before every token the mask is filled with
``llguidance.torch.fill_next_token_bitmask`` (what vLLM calls) and timed, wall and thread CPU.

To say where the time goes, an ``LLInterpreter`` on the same grammar replays the same tokens beside
the matcher, untimed: its ``compute_mask`` reports llguidance's own step statistics, which classify
each position by what llguidance had to do for the mask:

* **reused**: no trie node walked. llguidance keeps the last mask and returns it while the lexer
  state and the parser row are unchanged, which is the inside of a lexeme whose lexer state repeats
  (the middle of an identifier, a number).
* **sliced**: a vocabulary slice was applied. Inside a free-text lexeme (a comment, a string) the
  tokens the lexeme certainly allows are added as one precomputed mask; only the rest is walked.
* **walked**: the vocabulary trie was walked through lexer and parser. This is where the current
  lexeme may end inside the next token and others start: a lexeme boundary. It is where code
  grammars spend their mask time, because there most of the 151k-token vocabulary is allowed.

"Inside a lexeme" below is reused + sliced; "boundary" is walked. Per grammar: the share of masks
and of mask CPU in each class, p50 / p99 per class, the mean mask CPU per token, the trie nodes walked
and Earley items per token (llguidance's counts: the same on every run, so they compare grammar
variants without this machine's noise; items include the ones the token's commit computed), the
masks after a whitespace-only token (the figure BENCHMARKS.md section 2 quoted before this part), and
at the boundaries the contexts that cost most, keyed by the token before the mask (identifiers that
are not literals of the grammar shown as <name>, numbers as <number>, whitespace made visible).
"""

from __future__ import annotations

import json
import re
import time
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import llguidance
import llguidance.torch as llguidance_torch

import grammars

from .common import Log, machine, machine_line, md_table, part_results, percentile, write_result
from .grammar_engine import corpus_files

REUSED, SLICED, WALKED = "reused", "sliced", "walked"
KINDS = (REUSED, SLICED, WALKED)


@dataclass(frozen=True)
class Config:
    #: Library grammars to replay; empty: every one in ``grammars.names()``.
    grammars: tuple[str, ...] = ()
    files_per_grammar: int = 8
    #: Longest replay per file, in tokens (a longer file is cut there, without its end of text).
    max_tokens_per_file: int = 1500
    #: Matcher mask time per grammar: a slow grammar replays fewer files instead of stretching the run.
    seconds_per_grammar: float = 12.0
    top_contexts: int = 8


QUICK = Config(grammars=("json", "python"), files_per_grammar=1, max_tokens_per_file=60, top_contexts=3)


@dataclass(frozen=True)
class Mask:
    """One mask along a replayed file: its cost, and what llguidance did for it."""

    cpu_s: float
    wall_s: float
    kind: str
    nodes_walked: int
    items: int
    allowed: int
    context: str
    after_whitespace: bool


@dataclass(frozen=True)
class Replay:
    masks: list[Mask]
    clean: bool  # every token (and the end of text, for a whole file) was allowed by its mask


# ------------------------------------------------------------------------------------------ contexts

_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_NUMBER = re.compile(r"[0-9][0-9A-Za-z_.]*")
_VISIBLE = {"\n": "⏎", " ": "·", "\t": "⇥", "\r": "␍"}
_LITERAL = re.compile(r'"([A-Za-z_][A-Za-z0-9_]*)"')


def grammar_words(grammar_text: str) -> frozenset[str]:
    """The word literals of a grammar (its keywords): contexts keep these, other names are <name>."""
    return frozenset(_LITERAL.findall(grammar_text))


def _visible(whitespace: str) -> str:
    shown = "".join(_VISIBLE.get(c, c) for c in whitespace)
    return re.sub(r"(.)\1{3,}", lambda m: f"{m.group(1)}x{len(m.group(0))}", shown)


def context_of(previous: bytes, words: frozenset[str]) -> str:
    """The token before a mask, as a context key: names and numbers folded, whitespace visible."""
    if not previous:
        return "(start of file)"
    text = previous.decode("utf-8", errors="replace")
    core = text.strip()
    lead, trail = text[: len(text) - len(text.lstrip())], text[len(text.rstrip()) :] if core else ""
    if _WORD.fullmatch(core):
        core = core if core in words else "<name>"
    elif _NUMBER.fullmatch(core):
        core = "<number>"
    return f"{_visible(lead)}{core}{_visible(trail)}"


# ------------------------------------------------------------------------------------------ replay


def _step_stats(progress: str) -> dict[str, int]:
    """llguidance's statistics of the step an ``LLInterpreter.compute_mask`` just took."""
    for item in reversed(json.loads(progress)["progress"]):
        if "stats" in item:
            return item["stats"]
    return {}


def kind_of(stats: dict[str, int]) -> str:
    if stats.get("slices_applied", 0):
        return SLICED
    return WALKED if stats.get("trie_nodes_walked", 0) else REUSED


def replay(
    compiled: str, data: bytes, tokenizer: llguidance.LLTokenizer, max_tokens: int, words: frozenset[str]
) -> Replay:
    """Mask before every token of ``data`` (cut at ``max_tokens``), timed on a fresh matcher and
    classified by an interpreter replaying the same tokens beside it."""
    matcher = llguidance.LLMatcher(tokenizer, compiled, log_level=0)
    probe = llguidance.LLInterpreter(tokenizer, compiled, enable_backtrack=False, enable_ff_tokens=False, log_level=0)
    probe.start_without_prompt()
    bitmask = llguidance_torch.allocate_token_bitmask(1, tokenizer.vocab_size)
    tokens = tokenizer.tokenize_bytes(data)
    whole = len(tokens) <= max_tokens
    tokens = [*tokens, tokenizer.eos_token] if whole else tokens[:max_tokens]
    masks: list[Mask] = []
    previous = b""
    for token in tokens:
        cpu0, wall0 = time.thread_time(), time.perf_counter()
        llguidance_torch.fill_next_token_bitmask(matcher, bitmask, 0)
        wall, cpu = time.perf_counter() - wall0, time.thread_time() - cpu0
        _mask, progress = probe.compute_mask()
        stats = _step_stats(progress)
        # As one Python int: torch's own ops here cost milliseconds a step on loaded cores.
        allowed = int.from_bytes(bitmask.numpy().tobytes(), "little")
        masks.append(
            Mask(
                cpu_s=cpu,
                wall_s=wall,
                kind=kind_of(stats),
                nodes_walked=stats.get("trie_nodes_walked", 0),
                items=stats.get("all_items", 0),
                allowed=allowed.bit_count(),
                context=context_of(previous, words),
                after_whitespace=bool(previous) and not previous.strip(),
            )
        )
        if matcher.is_error() or not allowed >> token & 1:
            return Replay(masks, clean=False)
        if token != tokenizer.eos_token:
            matcher.consume_token(token)
            probe.commit_token(token)
            previous = tokenizer.decode_bytes([token])
    return Replay(masks, clean=True)


# ------------------------------------------------------------------------------------------ summary


def _ms(seconds: float) -> float:
    return round(seconds * 1e3, 4)


def _class_summary(masks: Sequence[Mask], total: Sequence[Mask]) -> dict[str, Any]:
    """Share of masks and of mask CPU, and the CPU p50 / p99, of a class of masks within ``total``."""
    cpu = [m.cpu_s for m in masks]
    spent = sum(m.cpu_s for m in total) or float("nan")
    count = len(masks) or float("nan")
    return {
        "masks": len(masks),
        "share_of_masks": round(len(masks) / max(1, len(total)), 4),
        "share_of_cpu": round(sum(cpu) / spent, 4),
        "p50_ms": _ms(percentile(cpu, 50)),
        "p99_ms": _ms(percentile(cpu, 99)),
        "mean_nodes_walked": round(sum(m.nodes_walked for m in masks) / count, 1),
        "mean_allowed_tokens": round(sum(m.allowed for m in masks) / count, 1),
    }


def top_contexts(masks: Sequence[Mask], limit: int) -> list[dict[str, Any]]:
    """The boundary contexts with the most mask CPU, with their share of all of the grammar's."""
    by_context: dict[str, list[Mask]] = defaultdict(list)
    for mask in masks:
        if mask.kind == WALKED:
            by_context[mask.context].append(mask)
    spent = sum(m.cpu_s for m in masks) or float("nan")
    ranked = sorted(by_context.items(), key=lambda item: -sum(m.cpu_s for m in item[1]))
    return [
        {
            "context": context,
            "masks": len(group),
            "share_of_cpu": round(sum(m.cpu_s for m in group) / spent, 4),
            "p50_ms": _ms(percentile([m.cpu_s for m in group], 50)),
            "mean_nodes_walked": round(sum(m.nodes_walked for m in group) / len(group)),
            "mean_items": round(sum(m.items for m in group) / len(group)),
            "mean_allowed_tokens": round(sum(m.allowed for m in group) / len(group)),
        }
        for context, group in ranked[:limit]
    ]


def summarize(masks: Sequence[Mask], top: int) -> dict[str, Any]:
    count = max(1, len(masks))
    after_space = [m for m in masks if m.after_whitespace]
    return {
        "masks": len(masks),
        "mean_cpu_ms": _ms(sum(m.cpu_s for m in masks) / count),
        "mean_wall_ms": _ms(sum(m.wall_s for m in masks) / count),
        "p50_ms": _ms(percentile([m.cpu_s for m in masks], 50)),
        "p99_ms": _ms(percentile([m.cpu_s for m in masks], 99)),
        "nodes_walked_per_token": round(sum(m.nodes_walked for m in masks) / count, 1),
        "items_per_token": round(sum(m.items for m in masks) / count, 1),
        "kinds": {kind: _class_summary([m for m in masks if m.kind == kind], masks) for kind in KINDS},
        "inside": _class_summary([m for m in masks if m.kind != WALKED], masks),
        "boundary": _class_summary([m for m in masks if m.kind == WALKED], masks),
        "after_whitespace": _class_summary(after_space, masks),
        "not_after_whitespace": _class_summary([m for m in masks if not m.after_whitespace], masks),
        "top_contexts": top_contexts(masks, top),
    }


def measure(
    grammar_text: str, files: Iterable[tuple[str, str]], tokenizer: llguidance.LLTokenizer, config: Config
) -> tuple[list[Mask], dict[str, int]]:
    """Replay ``files`` (name, text) through ``grammar_text`` until the grammar's time budget is spent.

    Takes the grammar's text, not its name, so a variant of a library grammar measures the same way.
    """
    compiled = llguidance.grammar_from("lark", grammar_text)
    words = grammar_words(grammar_text)
    masks: list[Mask] = []
    counts = {"files": 0, "clean": 0}
    for _name, text in files:
        if counts["files"] and sum(m.wall_s for m in masks) > config.seconds_per_grammar:
            break
        result = replay(compiled, text.encode("utf-8"), tokenizer, config.max_tokens_per_file, words)
        masks += result.masks
        counts["files"] += 1
        counts["clean"] += result.clean
    return masks, counts


# ------------------------------------------------------------------------------------------ report


def _pct(share: float) -> str:
    return f"{share * 100:.0f}%"


def summary_markdown(data: dict[str, Any]) -> str:
    rows = []
    for name, r in data["grammars"].items():
        s, inside, boundary = r["summary"], r["summary"]["inside"], r["summary"]["boundary"]
        rows.append([
            f"`{name}`",
            f"{s['masks']:,} ({r['files']['clean']}/{r['files']['files']} files clean)",
            f"{s['mean_cpu_ms']:.3f}",
            f"{_pct(boundary['share_of_masks'])} / {_pct(boundary['share_of_cpu'])}",
            f"{boundary['p50_ms']:.2f} / {boundary['p99_ms']:.2f}",
            f"{inside['p50_ms']:.3f} / {inside['p99_ms']:.2f}",
            " / ".join(_pct(s["kinds"][k]["share_of_masks"]) for k in KINDS),
            f"{s['nodes_walked_per_token'] / 1e3:.1f}k / {s['items_per_token'] / 1e3:.2f}k",
        ])  # fmt: skip
    headers = [
        "grammar",
        "masks",
        "mean mask CPU per token (ms)",
        "boundary: share of masks / of CPU",
        "boundary p50 / p99 (ms)",
        "inside p50 / p99 (ms)",
        "reused / sliced / walked (masks)",
        "trie nodes / Earley items per token",
    ]
    return md_table(headers, rows)


def whitespace_markdown(data: dict[str, Any]) -> str:
    rows = []
    for name, r in data["grammars"].items():
        after, other = r["summary"]["after_whitespace"], r["summary"]["not_after_whitespace"]
        rows.append([
            f"`{name}`",
            _pct(after["share_of_masks"]),
            _pct(after["share_of_cpu"]),
            f"{after['p50_ms']:.3f}",
            f"{other['p50_ms']:.3f}",
        ])  # fmt: skip
    headers = ["grammar", "masks after a whitespace token", "their share of CPU", "their p50 (ms)", "other p50 (ms)"]
    return md_table(headers, rows)


def contexts_markdown(name: str, result: dict[str, Any]) -> str:
    rows = [
        [
            f"`{c['context']}`",
            c["masks"],
            _pct(c["share_of_cpu"]),
            f"{c['p50_ms']:.2f}",
            f"{c['mean_nodes_walked'] / 1e3:.0f}k",
            f"{c['mean_items']:,}",
            f"{c['mean_allowed_tokens']:,}",
        ]
        for c in result["summary"]["top_contexts"]
    ]
    headers = [
        "token before",
        "masks",
        "share of all mask CPU",
        "p50 (ms)",
        "trie nodes",
        "Earley items",
        "allowed tokens",
    ]
    return f"#### `{name}`: boundary contexts with the most mask CPU\n\n{md_table(headers, rows)}\n"


def markdown(data: dict[str, Any]) -> str:
    config = data["config"]
    parts = [
        "### Where mask time goes (boundary vs inside a lexeme)\n",
        summary_markdown(data),
        "",
        f"Machine: {machine_line(data['machine'])}; load average after: "
        f"{', '.join(f'{v:.2f}' for v in data['machine']['loadavg_after'])}. "
        f"{data['machine']['note']}{' ' * bool(data['machine']['note'])}"
        f"llguidance {data['versions']['llguidance']}, Qwen2.5 tokenizer ({data['vocab_size']:,} tokens). "
        f"Up to {config['files_per_grammar']} files per grammar ({data['source']}), "
        f"{config['max_tokens_per_file']:,} tokens per file, {config['seconds_per_grammar']:g} s of mask time per "
        f"grammar; a fresh matcher per file; the run took {data['seconds']:.0f} s.",
        "",
        "Mask CPU is the filling thread's CPU time (`time.thread_time`), steadier than wall time where "
        "other work shares the cores. Boundary = llguidance walked the vocabulary trie for the mask; inside = "
        "it reused the previous mask (same lexer state and parser row) or applied a vocabulary slice "
        "(free text: comments, strings). Trie nodes and Earley items are llguidance's own counts "
        "(items include the token's commit), identical run to run.",
        "",
        "Masks after a whitespace-only token (the figure section 2 quoted from an earlier ad-hoc replay):",
        "",
        whitespace_markdown(data),
        "",
        *(contexts_markdown(name, result) for name, result in data["grammars"].items()),
    ]
    return "\n".join(parts)


def run(
    config: Config = Config(),
    out_dir: Path | None = None,
    log: Log = print,
    *,
    tokenizer_dir: Path | None = None,
    note: str = "",
) -> dict[str, Any]:
    """Replay every grammar's files and write ``masks.md/json``; ``note`` says what else ran here."""
    from grammars.tokenizers import DEFAULT_TOKENIZER_DIR, qwen_tokenizer

    info = machine(note)
    started = time.perf_counter()
    tokenizer = qwen_tokenizer(tokenizer_dir or DEFAULT_TOKENIZER_DIR)
    results: dict[str, Any] = {}
    sources = set()
    for name in config.grammars or tuple(grammars.names()):
        t0 = time.perf_counter()
        files, source = corpus_files(grammars.get_info(name).language, config.files_per_grammar)
        sources.add(source)
        masks, counts = measure(grammars.load(name), files, tokenizer, config)
        summary = summarize(masks, config.top_contexts)
        results[name] = {"files": counts, "summary": summary}
        boundary = summary["boundary"]
        log(
            f"  {name}: {time.perf_counter() - t0:.0f} s, {summary['masks']} masks, mean {summary['mean_cpu_ms']:.3f} "
            f"ms, boundary {_pct(boundary['share_of_masks'])} of masks, p50 {boundary['p50_ms']:.2f} ms"
        )
    data = part_results(
        "masks",
        info,
        config,
        versions={"llguidance": metadata.version("llguidance")},
        vocab_size=tokenizer.vocab_size,
        source=", ".join(sorted(sources)),
        seconds=round(time.perf_counter() - started, 1),
        grammars=results,
    )
    return write_result("masks", data, markdown, out_dir)
