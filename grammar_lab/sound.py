"""Soundness of a library grammar: random walks through it, judged by the language's real parser.

Usage::

    python -m grammar_lab.sound [--language L] [-n 300] [--seed 0] [--max-tokens 400] [--min-tokens 0]
                             [--stop-probability 0.7] [--tokenizer DIR|byte] [--show 5] [--dead-ends N]

Prints how many walks finished, how many the real parser accepted, and the first failures in full
(each one is a text the grammar allows but the language does not: a grammar bug to fix). With
``--dead-ends N`` it also probes N random places for dead ends (:func:`grammar_lab.walk.dead_end_sweep`):
tokens the mask allows that nothing can follow, where vLLM would end a generation on unfinished code.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass

import grammars
from grammar_lab import parsers, walk
from grammars.tokenizers import get_tokenizer
from grammars.validation import GrammarCompileError


@dataclass(frozen=True)
class Soundness:
    """Finished walks, those the parser rejected (text, message), and walks that did not finish."""

    language: str
    finished: int
    failures: list[tuple[str, str]]
    unfinished: int
    stuck: int
    seconds: float

    @property
    def rate(self) -> float:
        return (self.finished - len(self.failures)) / self.finished if self.finished else 0.0


def measure(
    name: str,
    count: int,
    *,
    seed: int = 0,
    max_tokens: int = 400,
    min_tokens: int = 0,
    stop_probability: float = 0.7,
    tokenizer_dir: str | None = None,
) -> Soundness:
    """Walk ``count`` finished samples through grammar ``name`` and judge each with the real parser."""
    info = grammars.get_info(name)
    tokenizer = get_tokenizer(tokenizer_dir) if tokenizer_dir is not None else get_tokenizer()
    started = time.perf_counter()
    report = walk.walk(
        grammars.load(info.name),
        count,
        seed=seed,
        tokenizer=tokenizer,
        max_tokens=max_tokens,
        min_tokens=min_tokens,
        stop_probability=stop_probability,
    )
    verdicts = parsers.check(info.language, report.texts)
    failures = [(text, message) for text, message in zip(report.texts, verdicts, strict=True) if message is not None]
    return Soundness(
        info.language, len(report.texts), failures, report.unfinished, report.stuck, time.perf_counter() - started
    )


def main(argv: list[str] | None = None) -> int:
    """Exit 0 when every finished walk parses, 1 when some did not (each failure is printed)."""
    parser = argparse.ArgumentParser(description="Random walks through a library grammar, judged by the real parser.")
    parser.add_argument("--language", default="python", help="grammar name or language (default python)")
    parser.add_argument("-n", "--count", type=int, default=300, help="finished walks wanted (default 300)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--max-tokens", type=int, default=400, help="token budget per walk (default 400)")
    parser.add_argument("--min-tokens", type=int, default=0, help="no stopping before this many tokens (default 0)")
    parser.add_argument(
        "--stop-probability",
        type=float,
        default=0.7,
        help="chance of stopping at each accepting point (default 0.7); lower it for longer walks: "
        "a grammar accepts after one small item, so most walks otherwise end soon after it",
    )
    parser.add_argument("--tokenizer", default=None, help="Qwen tokenizer folder or 'byte' (default: Qwen)")
    parser.add_argument("--show", type=int, default=5, help="print at most N failing texts")
    parser.add_argument(
        "--dead-ends", type=int, default=0, metavar="N", help="also probe N random places for dead ends (default 0)"
    )
    args = parser.parse_args(argv)
    if args.dead_ends < 0:
        parser.error("--dead-ends takes a positive N (0, the default, probes nothing)")
    try:
        result = measure(
            args.language,
            args.count,
            seed=args.seed,
            max_tokens=args.max_tokens,
            min_tokens=args.min_tokens,
            stop_probability=args.stop_probability,
            tokenizer_dir=args.tokenizer,
        )
    except (grammars.UnknownGrammarError, parsers.ParserUnavailableError, GrammarCompileError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    for text, message in result.failures[: args.show]:
        print(f"--- rejected by the {result.language} parser: {message[:300]}")
        print(text)
    print(
        f"{result.language}: {result.finished - len(result.failures)}/{result.finished} finished walks parse "
        f"({result.rate:.1%}); {result.unfinished} ran out of tokens, {result.stuck} got stuck; {result.seconds:.1f} s"
    )
    dead_ends = _sweep(args) if args.dead_ends > 0 else []
    return 0 if not result.failures and not dead_ends else 1


def _sweep(args: argparse.Namespace) -> list[walk.DeadEnd]:
    """Run and print the dead-end sweep the command line asked for."""
    info = grammars.get_info(args.language)
    tokenizer = get_tokenizer(args.tokenizer) if args.tokenizer is not None else get_tokenizer()
    started = time.perf_counter()
    found = walk.dead_end_sweep(grammars.load(info.name), args.dead_ends, seed=args.seed, tokenizer=tokenizer)
    for dead in found[: args.show]:
        print(f"--- dead end: {dead.token!r} after ...{dead.prefix[-120:]!r}")
    seconds = time.perf_counter() - started
    print(f"{info.language}: {len(found)} dead ends at {args.dead_ends} random places; {seconds:.1f} s")
    return found


if __name__ == "__main__":
    sys.exit(main())
