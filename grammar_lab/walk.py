"""Random walks through a grammar: texts a model *could* be forced to write, for soundness checks.

Corpus checks (:mod:`grammar_lab.check`) show a grammar lets real code through; they cannot show it
keeps bad code out. A random walk asks the other question: at every step take a random token from
the llguidance mask (what vLLM would allow a model to sample), and once the grammar accepts, stop
with high probability. Every finished walk is a text the grammar accepts, so it must be a program
the language's real parser accepts (:mod:`grammar_lab.parsers`); one that is not is a grammar bug.

Uniformly random tokens mostly extend whatever lexeme is open (an identifier, a string), so walks
also prefer single-byte tokens half of the time: those close brackets, strings and statements and
let walks finish within a token budget. Walks that do not finish in time are dropped and counted;
a grammar where most walks never finish is one a weak model can wander around in forever.
"""

from __future__ import annotations

import functools
import random
from collections.abc import Callable
from dataclasses import dataclass, field

import llguidance
import numpy as np

from grammar_lab.masks import dead_ends_in, operator_like
from grammars.tokenizers import get_tokenizer
from grammars.validation import compiled

__all__ = ["DeadEnd", "WalkReport", "dead_end_sweep", "sample", "walk"]


@dataclass
class WalkReport:
    """Finished texts, how many walks ran out of tokens, and how many got stuck (empty mask)."""

    texts: list[str] = field(default_factory=list)
    unfinished: int = 0
    stuck: int = 0
    tokens: int = 0

    @property
    def attempts(self) -> int:
        return len(self.texts) + self.unfinished + self.stuck


@functools.cache
def _token_lengths(tokenizer: llguidance.LLTokenizer) -> np.ndarray:
    """Byte length of every token (specials count as 0 so they are never preferred)."""
    lengths = np.zeros(tokenizer.vocab_size, dtype=np.int32)
    for token in range(tokenizer.vocab_size):
        if not tokenizer.is_special_token(token):
            lengths[token] = len(tokenizer.decode_bytes([token]))
    return lengths


def _allowed(mask: bytes, vocab_size: int) -> np.ndarray:
    bits = np.unpackbits(np.frombuffer(mask, dtype=np.uint8), bitorder="little")[:vocab_size]
    return np.flatnonzero(bits)


def _random_token(
    matcher: llguidance.LLMatcher, tokenizer: llguidance.LLTokenizer, rng: random.Random, short_bias: float
) -> int | None:
    """A random non-EOS token the mask allows (single bytes preferred with ``short_bias``), or None."""
    lengths = _token_lengths(tokenizer)
    allowed = _allowed(matcher.compute_bitmask(), tokenizer.vocab_size)
    allowed = allowed[(allowed != tokenizer.eos_token) & (lengths[allowed] > 0)]
    if matcher.is_error() or allowed.size == 0:
        return None
    if rng.random() < short_bias:
        short = allowed[lengths[allowed] == 1]
        if short.size:
            allowed = short
    return int(allowed[rng.randrange(allowed.size)])


def _one_walk(
    matcher: llguidance.LLMatcher,
    tokenizer: llguidance.LLTokenizer,
    rng: random.Random,
    max_tokens: int,
    stop_probability: float,
    short_bias: float,
    min_tokens: int = 0,
) -> tuple[str | None, int, bool]:
    """One walk from the start state: (text or None when unfinished, tokens used, stuck)."""
    tokens: list[int] = []
    matcher.reset()
    while len(tokens) < max_tokens:
        if len(tokens) >= min_tokens and matcher.is_accepting() and rng.random() < stop_probability:
            return tokenizer.decode_bytes(tokens).decode("utf-8", errors="replace"), len(tokens), False
        token = _random_token(matcher, tokenizer, rng, short_bias)
        if token is None:
            if matcher.is_accepting() and not matcher.is_error():
                return tokenizer.decode_bytes(tokens).decode("utf-8", errors="replace"), len(tokens), False
            return None, len(tokens), True
        if not matcher.consume_token(token):
            return None, len(tokens), True
        tokens.append(token)
    return None, len(tokens), False


def walk(
    grammar_text: str,
    count: int,
    *,
    seed: int = 0,
    tokenizer: llguidance.LLTokenizer | None = None,
    max_tokens: int = 400,
    stop_probability: float = 0.7,
    short_bias: float = 0.5,
    max_attempts: int | None = None,
    min_tokens: int = 0,
) -> WalkReport:
    """Walk until ``count`` texts finish or ``max_attempts`` (default 4 x count) walks have run.

    ``min_tokens`` keeps a walk from stopping before it has that many tokens: for grammars that
    accept a one-line file, most unconstrained walks would otherwise end right there.
    """
    tok = tokenizer if tokenizer is not None else get_tokenizer()
    matcher = llguidance.LLMatcher(tok, compiled(grammar_text), log_level=0)
    rng = random.Random(seed)
    report = WalkReport()
    attempts = max_attempts if max_attempts is not None else 4 * count
    for index in range(attempts):
        if len(report.texts) >= count:
            break
        if index and index % 50 == 0:  # lexer states accumulate in a matcher; start clean now and then
            matcher = llguidance.LLMatcher(tok, compiled(grammar_text), log_level=0)
        text, used, stuck = _one_walk(matcher, tok, rng, max_tokens, stop_probability, short_bias, min_tokens)
        report.tokens += used
        if text is not None:
            report.texts.append(text)
        elif stuck:
            report.stuck += 1
        else:
            report.unfinished += 1
    return report


def sample(
    grammar_text: str,
    count: int,
    *,
    seed: int = 0,
    tokenizer: llguidance.LLTokenizer | None = None,
    max_tokens: int = 400,
    **options: float,
) -> list[str]:
    """Up to ``count`` finished random walks through the grammar (see :func:`walk` for the counts)."""
    return walk(grammar_text, count, seed=seed, tokenizer=tokenizer, max_tokens=max_tokens, **options).texts


@dataclass(frozen=True)
class DeadEnd:
    """A token the mask allows after ``prefix`` that nothing can follow (see :mod:`grammar_lab.masks`)."""

    prefix: str
    token: bytes


def dead_end_sweep(
    grammar_text: str,
    positions: int,
    *,
    seed: int = 0,
    tokenizer: llguidance.LLTokenizer | None = None,
    keep: Callable[[bytes], bool] = operator_like,
    max_prefix: int = 200,
    short_bias: float = 0.5,
) -> list[DeadEnd]:
    """Walk to ``positions`` random places in the grammar and probe each for dead ends.

    A random walk only stumbles into a dead end if it happens to pick that one token (1,500 walks
    through a TypeScript grammar with one after every `x--` never did); probing every ``keep`` token
    at each place found it within 6 places. Each place is the end of a fresh walk of 1 to
    ``max_prefix`` tokens.
    """
    tok = tokenizer if tokenizer is not None else get_tokenizer()
    matcher = llguidance.LLMatcher(tok, compiled(grammar_text), log_level=0)
    rng = random.Random(seed)
    found: list[DeadEnd] = []
    for index in range(positions):
        if index and index % 50 == 0:  # lexer states accumulate in a matcher; start clean now and then
            matcher = llguidance.LLMatcher(tok, compiled(grammar_text), log_level=0)
        matcher.reset()
        tokens: list[int] = []
        for _ in range(rng.randint(1, max_prefix)):
            token = _random_token(matcher, tok, rng, short_bias)
            if token is None and not matcher.is_accepting() and tokens:  # the walk itself hit one
                found.append(DeadEnd(_text(tok, tokens[:-1]), tok.decode_bytes(tokens[-1:])))
            if token is None:
                break
            if not matcher.consume_token(token):  # allowed by the mask, refused when taken
                found.append(DeadEnd(_text(tok, tokens), tok.decode_bytes([token])))
                break
            tokens.append(token)
        else:
            found += [DeadEnd(_text(tok, tokens), token) for token in dead_ends_in(matcher, tok, keep)]
    return found


def _text(tokenizer: llguidance.LLTokenizer, tokens: list[int]) -> str:
    return tokenizer.decode_bytes(tokens).decode("utf-8", errors="replace")
