"""Feed real files through a library grammar with llguidance and report how many it accepts.

Usage::

    python -m grammar_lab.check [--language LANGUAGE] [--limit N] [--tokenizer DIR|byte]
                                [--min-size BYTES] [--max-size BYTES] [--show N] [--masks]
                                [--dead-ends N] [PATH ...]

Without paths it checks the language's dev corpus (:mod:`grammar_lab.corpus`: real files of 1-20 KB
from several projects, each accepted by the language's own parser, :mod:`grammar_lab.parsers`), so
every miss is the grammar's. With paths it applies the same size window and parser filter to them.

Why this exists: a grammar that compiles can still reject ordinary code (a greedy terminal, a missing
construct), and the model is then forced into odd output. The accept rate on a corpus of real files,
with the first rejected position of each miss, is the measure that finds those gaps. Verdicts come
from :func:`grammars.validation.check_text`, so tests, this tool and ``maze-inference check`` agree on
what "accepts" means. The byte-level tokenizer gives the same verdict as Qwen's (llguidance runs on
bytes) with exact offsets; the Qwen tokenizer is used when its files are present.
"""

from __future__ import annotations

import argparse
import ast
import sys
import time
from collections.abc import Iterable
from pathlib import Path

import llguidance

import grammars
from grammar_lab import corpus, parsers
from grammar_lab.masks import dead_ends_along, replay_with_masks
from grammars.tokenizers import DEFAULT_TOKENIZER_DIR, get_tokenizer
from grammars.validation import Verdict, check_text, line_column

#: Size window for corpus files, in bytes: big enough to be real code, small enough to generate.
MIN_SIZE = 1_000
MAX_SIZE = 20_000


def uses_four_space_indentation(source: str) -> bool:
    """True for valid Python whose every indented block is exactly 4 more spaces (no tabs)."""
    try:
        ast.parse(source)
    except (SyntaxError, ValueError):
        return False
    return corpus.uses_four_space_indentation(source)


def is_strict_json(source: str) -> bool:
    """True for RFC 8259 JSON (Python's json also takes NaN and Infinity, which the RFC does not)."""
    return parsers.check("json", [source])[0] is None


def read_corpus(
    paths: Iterable[Path], language: str, min_size: int = MIN_SIZE, max_size: int = MAX_SIZE
) -> list[tuple[Path, str]]:
    """Files under ``paths`` in the size window that the real parser accepts (so misses are the grammar's)."""
    suffixes = corpus.SOURCES[language].suffixes if language in corpus.SOURCES else ("",)
    found: list[tuple[Path, str]] = []
    for path in paths:
        files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
        for file in files:
            if path.is_dir() and not file.name.endswith(suffixes):
                continue
            if not min_size <= file.stat().st_size <= max_size:
                continue
            try:
                found.append((file, file.read_text(encoding="utf-8")))
            except (UnicodeDecodeError, OSError):
                continue
    verdicts = parsers.check(language, [text for _path, text in found])
    convention = corpus.CONVENTIONS.get(language, lambda _text: True)
    return [item for item, verdict in zip(found, verdicts, strict=True) if verdict is None and convention(item[1])]


def _excerpt(text: str, verdict: Verdict) -> str:
    """The rejected line with a marker, for the report."""
    assert verdict.line is not None and verdict.column is not None
    lines = text.splitlines() or [""]
    line = lines[min(verdict.line, len(lines)) - 1]
    return f"    {line[:110]!r}\n    {' ' * verdict.column}^"


def run(
    language: str,
    paths: list[Path],
    limit: int | None,
    tokenizer: llguidance.LLTokenizer,
    show: int,
    window: tuple[int, int] = (MIN_SIZE, MAX_SIZE),
    masks: bool = False,
    dead_ends_every: int = 0,
) -> float:
    """Check the corpus, print a report, return the accept rate (with ``masks``: replay generation;
    with ``dead_ends_every``: also probe every N-th token of each file for dead ends)."""
    grammar_name = grammars.get_info(language).name
    grammar_text = grammars.load(grammar_name)
    if paths:
        files = read_corpus(paths, language, *window)[:limit]
    else:
        files = [(path, path.read_text(encoding="utf-8")) for path in corpus.files(language, limit, *window)]
    started = time.perf_counter()
    rejected: list[tuple[Path, str, Verdict]] = []
    mask_times: list[float] = []
    places = dead_ends = 0
    for path, text in files:
        if masks:
            verdict, times = replay_with_masks(grammar_text, text, tokenizer)
            mask_times += times
        else:
            verdict = check_text(grammar_text, text, tokenizer)
        if not verdict.accepted:
            rejected.append((path, text, verdict))
        if dead_ends_every:
            places += len(tokenizer.tokenize_bytes(text.encode("utf-8"))) // dead_ends_every
            for offset, token in dead_ends_along(grammar_text, text, dead_ends_every, tokenizer):
                dead_ends += 1
                line, column = line_column(text.encode("utf-8"), offset)
                print(f"DEAD END {path}:{line}:{column}: the mask allows {token!r}, then nothing can follow")
    elapsed = time.perf_counter() - started
    total = len(files)
    rate = (total - len(rejected)) / total if total else 0.0
    for path, text, verdict in rejected[:show]:
        print(f"REJECTED {path} at {verdict.where()} (byte {verdict.offset}): {verdict.message[:160]}")
        print(_excerpt(text, verdict))
    if len(rejected) > show:
        print(f"... and {len(rejected) - show} more rejected files")
    print(
        f"{grammar_name}: accepted {total - len(rejected)}/{total} files ({rate:.1%}) "
        f"of {window[0]}-{window[1]} bytes in {elapsed:.1f} s"
    )
    if mask_times:
        ordered = sorted(mask_times)
        p50, p99 = ordered[len(ordered) // 2], ordered[int(len(ordered) * 0.99)]
        print(
            f"masks: {len(ordered)} computed, p50 {p50 * 1e3:.2f} ms, p99 {p99 * 1e3:.2f} ms, "
            f"max {ordered[-1] * 1e3:.1f} ms"
        )
    if dead_ends_every:
        print(f"dead ends: {dead_ends} at {places} probed places (every {dead_ends_every}th token)")
    return rate


def main(argv: list[str] | None = None) -> int:
    """Command-line entry: exit 0 when the corpus was checked (the rate is a measurement, not a gate)."""
    parser = argparse.ArgumentParser(description="Accept rate of a library grammar on real files.")
    parser.add_argument("paths", nargs="*", type=Path, help="files or folders (default: see --language)")
    parser.add_argument("--language", default="python", help="grammar name or language (default python)")
    parser.add_argument("--limit", type=int, default=None, help="check at most N files")
    parser.add_argument(
        "--tokenizer",
        default=str(DEFAULT_TOKENIZER_DIR),
        help="Qwen tokenizer folder, or 'byte' (default: the repo copy, else byte-level)",
    )
    parser.add_argument("--show", type=int, default=50, help="print at most N rejected files")
    parser.add_argument("--min-size", type=int, default=MIN_SIZE, help=f"skip smaller files (default {MIN_SIZE})")
    parser.add_argument("--max-size", type=int, default=MAX_SIZE, help=f"skip larger files (default {MAX_SIZE})")
    parser.add_argument(
        "--masks",
        action="store_true",
        help="replay each file as a generation: a token mask before every token (slow; use the Qwen tokenizer)",
    )
    parser.add_argument(
        "--dead-ends",
        type=int,
        default=0,
        metavar="N",
        help="also try every operator-like token the mask allows at every N-th token (dead ends; slow)",
    )
    args = parser.parse_args(argv)
    if args.dead_ends < 0:
        parser.error("--dead-ends takes a positive N (0, the default, probes nothing)")
    language = grammars.get_info(args.language).language
    window = (args.min_size, args.max_size)
    tokenizer = get_tokenizer(args.tokenizer)
    try:
        run(language, args.paths, args.limit, tokenizer, args.show, window, args.masks, args.dead_ends)
    except (corpus.CorpusUnavailableError, parsers.ParserUnavailableError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
