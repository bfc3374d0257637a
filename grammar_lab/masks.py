"""What the token mask allows at a place in a grammar: generation replays, lexeme bounds, dead ends.

Feeding a text through a matcher (:func:`grammars.validation.check_text`) proves the text is in the
grammar. Generation also needs each token mask, and a grammar can go wrong there where plain feeding
is fine: a mask over per-step limits, a lexeme that runs on past its documented bound, or a token the
mask allows after which nothing can follow (a *dead end*: vLLM then forces EOS on unfinished code).
These helpers compute masks with llguidance, as vLLM does, to find those; the grammar tests and
:mod:`grammar_lab.check` use them.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable

import llguidance

from grammars.tokenizers import byte_tokenizer
from grammars.validation import Verdict, compiled, line_column

__all__ = [
    "allowed_next",
    "blank_line_tokens_after",
    "dead_ends_after",
    "dead_ends_along",
    "dead_ends_in",
    "operator_like",
    "replay_with_masks",
    "tokens_past_the_end",
]


def replay_with_masks(
    grammar_text: str, source: str, tokenizer: llguidance.LLTokenizer | None = None
) -> tuple[Verdict, list[float]]:
    """Replay ``source`` as a generation: compute the token mask before every token, as vLLM does.

    Feeding tokens (:func:`check_text`) only proves the text is in the grammar. Generation also needs
    each mask: llguidance walks the whole vocabulary through the lexer and parser for it, under
    per-step limits (LexerTooComplex, ParserTooComplex) that a grammar can exceed where plain feeding
    is fine. The replay requires every token to be allowed by its mask and EOS to be allowed at the
    end. Returns the verdict and the mask times in seconds. Uses a fresh matcher (masks grow it).
    """
    tok = tokenizer if tokenizer is not None else byte_tokenizer()
    matcher = llguidance.LLMatcher(tok, compiled(grammar_text), log_level=0)
    data = source.encode("utf-8")
    tokens = [*tok.tokenize_bytes(data), tok.eos_token]
    times: list[float] = []
    for index, token in enumerate(tokens):
        started = time.perf_counter()
        mask = matcher.compute_bitmask()
        times.append(time.perf_counter() - started)
        allowed = not matcher.is_error() and bool(mask[token // 8] >> (token % 8) & 1)
        if not allowed:
            offset = len(tok.decode_bytes(tokens[:index]))
            reason = matcher.get_error().split("\n<state>")[0] or (
                "end of text not allowed here" if token == tok.eos_token else "token not allowed by the mask"
            )
            line, column = line_column(data, offset)
            return Verdict(False, offset, line, column, reason), times
        if token != tok.eos_token:
            matcher.consume_token(token)
    return Verdict(accepted=True), times


def _matcher_after(grammar_text: str, prefix: str, tokenizer: llguidance.LLTokenizer) -> llguidance.LLMatcher:
    """A fresh matcher that has consumed ``prefix``; ValueError when the grammar does not take it."""
    matcher = llguidance.LLMatcher(tokenizer, compiled(grammar_text), log_level=0)
    tokens = tokenizer.tokenize_bytes(prefix.encode("utf-8"))
    if matcher.try_consume_tokens(tokens) != len(tokens):
        raise ValueError(f"the grammar does not take the prefix: {matcher.get_error()[:200]}")
    return matcher


def allowed_next(grammar_text: str, prefix: str, tokenizer: llguidance.LLTokenizer | None = None) -> list[bytes]:
    """The bytes of every token the mask allows after ``prefix`` (EOS as ``b""``; other specials left out).

    Raises ValueError when the grammar does not take ``prefix`` itself. Used to prove lexeme bounds:
    at a lexeme's limit the mask must offer only the tokens that end it.
    """
    tok = tokenizer if tokenizer is not None else byte_tokenizer()
    matcher = _matcher_after(grammar_text, prefix, tok)
    mask = matcher.compute_bitmask()
    allowed = [t for t in range(tok.vocab_size) if mask[t // 8] >> (t % 8) & 1]
    kept = [t for t in allowed if t == tok.eos_token or not tok.is_special_token(t)]
    return [b"" if t == tok.eos_token else tok.decode_bytes([t]) for t in kept]


def blank_line_tokens_after(
    grammar_text: str, prefix: str, tokenizer: llguidance.LLTokenizer | None = None
) -> list[bytes]:
    """The whitespace-only tokens holding a line break that the mask allows after ``prefix``: what
    would extend a run of blank lines (empty where the grammar bounds that run)."""
    return [t for t in allowed_next(grammar_text, prefix, tokenizer) if t and not t.strip() and b"\n" in t]


def tokens_past_the_end(
    grammar_text: str, prefix: str, ends: tuple[bytes, ...], tokenizer: llguidance.LLTokenizer | None = None
) -> list[bytes]:
    """The tokens the mask allows after ``prefix`` that do not start with one of ``ends`` (``b""``
    there means EOS may come): empty where ``prefix`` sits at a lexeme's limit and only its end may
    follow. Raises ValueError when nothing at all is allowed, since a dead end proves no bound."""
    allowed = allowed_next(grammar_text, prefix, tokenizer)
    if not allowed:
        raise ValueError("the mask allows nothing after the prefix")
    starts = tuple(end for end in ends if end)
    return [t for t in allowed if not (t.startswith(starts) if t else b"" in ends)]


@functools.cache
def _ordinary_tokens(tokenizer: llguidance.LLTokenizer) -> int:
    """A bit set (bit t = token t) of every token that is not a special one (EOS, chat markers)."""
    return sum(1 << t for t in range(tokenizer.vocab_size) if not tokenizer.is_special_token(t))


def dead_ends_after(
    grammar_text: str,
    prefix: str,
    keep: Callable[[bytes], bool],
    tokenizer: llguidance.LLTokenizer | None = None,
) -> list[bytes]:
    """The tokens the mask allows after ``prefix`` (those ``keep`` selects) that lead nowhere.

    A dead end is a token the mask lets through after which the next mask offers nothing but EOS
    while the text is incomplete: vLLM's guidance backend then forces EOS, and the output ends with
    `finish_reason: "stop"` on unfinished code. llguidance checks one lexeme ahead only, so a grammar
    whose lexeme can be matched but not followed by anything has them. Each selected token is tried
    on a copy of the matcher (about a millisecond each), hence ``keep``.
    """
    tok = tokenizer if tokenizer is not None else byte_tokenizer()
    return dead_ends_in(_matcher_after(grammar_text, prefix, tok), tok, keep)


def operator_like(token: bytes) -> bool:
    """Short ASCII tokens without letters or digits: operators, brackets, quotes, whitespace runs.

    Dead ends come from lexemes that match but cannot be followed, and in these grammars those are
    operator and delimiter lexemes; names and literals rarely matter. Qwen has about 3,800 such tokens
    of its 151,000, so probing one place takes about a second, not minutes.
    """
    return 1 <= len(token) <= 4 and token.isascii() and not any(chr(byte).isalnum() for byte in token)


def dead_ends_in(
    matcher: llguidance.LLMatcher, tokenizer: llguidance.LLTokenizer, keep: Callable[[bytes], bool]
) -> list[bytes]:
    """:func:`dead_ends_after` for a matcher already at the position (it is left unchanged)."""
    ordinary = _ordinary_tokens(tokenizer)
    usual = _usual_followers(tokenizer)
    mask = matcher.compute_bitmask()
    dead: list[bytes] = []
    for token, text in _kept_tokens(tokenizer, keep):
        if not mask[token // 8] >> (token % 8) & 1:
            continue
        probe = matcher.deep_copy()
        if not probe.consume_token(token):
            dead.append(text)
        elif probe.is_accepting() or any(probe.validate_tokens([follower]) for follower in usual):
            continue  # something can follow: no need for the whole next mask
        elif probe.is_error() or not int.from_bytes(probe.compute_bitmask(), "little") & ordinary:
            dead.append(text)
    return dead


def dead_ends_along(
    grammar_text: str,
    source: str,
    every: int,
    tokenizer: llguidance.LLTokenizer | None = None,
    keep: Callable[[bytes], bool] = operator_like,
) -> list[tuple[int, bytes]]:
    """Dead ends at every ``every``-th token of ``source`` (real code reaches states random walks
    rarely do): (byte offset, token) pairs. Stops where the grammar rejects the text."""
    tok = tokenizer if tokenizer is not None else byte_tokenizer()
    matcher = llguidance.LLMatcher(tok, compiled(grammar_text), log_level=0)
    found: list[tuple[int, bytes]] = []
    offset = 0
    for index, token in enumerate(tok.tokenize_bytes(source.encode("utf-8"))):
        if index % every == every - 1:
            found += [(offset, dead) for dead in dead_ends_in(matcher, tok, keep)]
        if not matcher.consume_token(token):
            break
        offset += len(tok.decode_bytes([token]))
    return found


@functools.cache
def _kept_tokens(tokenizer: llguidance.LLTokenizer, keep: Callable[[bytes], bool]) -> list[tuple[int, bytes]]:
    """The ordinary tokens ``keep`` selects, with their bytes: decided once, not at every probed place."""
    found = []
    for token in range(tokenizer.vocab_size):
        if not tokenizer.is_special_token(token) and keep(text := tokenizer.decode_bytes([token])):
            found.append((token, text))
    return found


@functools.cache
def _usual_followers(tokenizer: llguidance.LLTokenizer) -> list[int]:
    """Single-byte tokens that follow most tokens of code: checking them one by one settles nearly every
    probe without computing a whole mask (a hundred times the work)."""
    tokens = [tokenizer.tokenize_bytes(bytes([byte])) for byte in b" \n;,)]}(0a'\"."]
    return [found[0] for found in tokens if len(found) == 1]
