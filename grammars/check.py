"""Feed real files through a library grammar with llguidance and report how many it accepts.

Usage::

    python -m grammars.check [--language LANGUAGE] [--limit N] [--tokenizer DIR|byte]
                             [--min-size BYTES] [--max-size BYTES] [--show N] [--masks] [PATH ...]

Without paths it checks the language's dev corpus (:mod:`grammars.corpus`: real files of 1-20 KB
from several projects, each accepted by the language's own parser, :mod:`grammars.parsers`), so
every miss is the grammar's. With paths it applies the same size window and parser filter to them.

Why this exists: a grammar that compiles can still reject ordinary code (a greedy terminal, a missing
construct), and the model is then forced into odd output. The accept rate on a corpus of real files,
with the first rejected position of each miss, is the measure that finds those gaps. The same helpers
(:func:`accepts`, :func:`check_text`) back the tests, so tests and tool agree on what "accepts" means.

llguidance runs on bytes: the tokenizer only decides how bytes are chunked, so the byte-level
tokenizer gives the same verdict as Qwen's and an exact failure offset, and it loads instantly.
The Qwen2.5 tokenizer is used when its files are present (it is what vLLM feeds the matcher).
This module needs llguidance (and transformers for the Qwen tokenizer); ``grammars/__init__`` does not.
"""

from __future__ import annotations

import argparse
import ast
import functools
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import llguidance

import grammars
from grammars import corpus, parsers

#: The project's copy of the Qwen2.5 tokenizer (vocab.json, merges.txt, tokenizer_config.json).
DEFAULT_TOKENIZER_DIR = Path(__file__).resolve().parents[1] / "app" / "tokenizer" / "qwen2.5-coder"
#: Size window for corpus files, in bytes: big enough to be real code, small enough to generate.
MIN_SIZE = 1_000
MAX_SIZE = 20_000


class GrammarCompileError(ValueError):
    """llguidance refused the grammar; the message is llguidance's own."""


@dataclass(frozen=True)
class Verdict:
    """Outcome of feeding one text through a grammar.

    ``offset`` is the byte offset of the first rejected token (with the byte tokenizer: the first
    rejected byte), or the text length when every token was taken but the text ended too early.
    """

    accepted: bool
    offset: int | None = None
    line: int | None = None
    column: int | None = None
    message: str = ""

    def where(self) -> str:
        """``line:column`` (1-based) of the failure, or an empty string when accepted."""
        return "" if self.accepted else f"{self.line}:{self.column}"


@functools.cache
def byte_tokenizer() -> llguidance.LLTokenizer:
    """llguidance's built-in byte-level tokenizer: no files, no transformers, exact offsets."""
    return llguidance.LLTokenizer("byte")


@functools.cache
def qwen_tokenizer(tokenizer_dir: Path = DEFAULT_TOKENIZER_DIR) -> llguidance.LLTokenizer:
    """The Qwen2.5 tokenizer as llguidance sees it under vLLM (about 10 s to build, so cached)."""
    # Heavy imports (transformers takes seconds), only when this tokenizer is asked for.
    import llguidance.hf
    from transformers import AutoTokenizer

    return llguidance.hf.from_tokenizer(AutoTokenizer.from_pretrained(str(tokenizer_dir)))


def get_tokenizer(tokenizer_dir: Path | str | None = DEFAULT_TOKENIZER_DIR) -> llguidance.LLTokenizer:
    """Qwen's tokenizer from ``tokenizer_dir`` when it exists there, else the byte-level one.

    Pass ``"byte"`` or ``None`` to ask for the byte-level tokenizer explicitly.
    """
    if tokenizer_dir is None or str(tokenizer_dir) == "byte":
        return byte_tokenizer()
    path = Path(tokenizer_dir)
    if (path / "vocab.json").is_file():
        return qwen_tokenizer(path)
    return byte_tokenizer()


def validate(grammar_text: str) -> str:
    """llguidance's verdict on a Lark grammar: ``""`` when it compiles, else the error message."""
    return llguidance.LLMatcher.validate_grammar(llguidance.grammar_from("lark", grammar_text))


@functools.cache
def compiled(grammar_text: str) -> str:
    """The llguidance grammar for a Lark text, compiled and validated once per text.

    Raises :class:`GrammarCompileError` with llguidance's message when the grammar is invalid.
    """
    compiled = llguidance.grammar_from("lark", grammar_text)
    error = llguidance.LLMatcher.validate_grammar(compiled)
    if error:
        raise GrammarCompileError(error)
    return compiled


def _line_column(data: bytes, offset: int) -> tuple[int, int]:
    """1-based line and column (in characters) of a byte offset."""
    before = data[:offset]
    line = before.count(b"\n") + 1
    column = len(before[before.rfind(b"\n") + 1 :].decode("utf-8", errors="replace")) + 1
    return line, column


#: A matcher's lexer keeps every state it builds until the matcher is dropped; llguidance gives up
#: ("too many expressions constructed") after roughly 500 KB of distinct source. One generation
#: stays far below that, a corpus run does not: start a fresh matcher after this many bytes.
REBUILD_AFTER_BYTES = 100_000

_matchers: dict[tuple[str, llguidance.LLTokenizer], tuple[llguidance.LLMatcher, int]] = {}


def _matcher(
    grammar_text: str, tokenizer: llguidance.LLTokenizer, size: int, fresh: bool = False
) -> llguidance.LLMatcher:
    """A reset matcher for the grammar, reused across texts until REBUILD_AFTER_BYTES.

    Building a matcher for python.lark takes ~30 ms; resetting one takes microseconds and keeps
    its lexer states warm. Not thread-safe: this module serves tests and a command-line tool.
    """
    key = (grammar_text, tokenizer)
    matcher, used = _matchers.get(key, (None, 0))
    if matcher is None or fresh or used + size > REBUILD_AFTER_BYTES:
        matcher, used = llguidance.LLMatcher(tokenizer, compiled(grammar_text), log_level=0), 0
        if matcher.is_error():
            raise GrammarCompileError(matcher.get_error())
    _matchers[key] = (matcher, used + size)
    matcher.reset()
    return matcher


def check_text(grammar_text: str, source: str, tokenizer: llguidance.LLTokenizer | None = None) -> Verdict:
    """Feed ``source`` token by token through ``grammar_text``; accepted only if it is complete."""
    tok = tokenizer if tokenizer is not None else byte_tokenizer()
    data = source.encode("utf-8")
    tokens = tok.tokenize_bytes(data)
    verdict = _feed(_matcher(grammar_text, tok, len(data)), tok, data, tokens)
    if verdict.message.startswith("lexer error"):  # a resource limit, not the text: retry on a fresh one
        verdict = _feed(_matcher(grammar_text, tok, len(data), fresh=True), tok, data, tokens)
    return verdict


def _feed(matcher: llguidance.LLMatcher, tok: llguidance.LLTokenizer, data: bytes, tokens: list[int]) -> Verdict:
    """Run the tokens through a reset matcher and describe the outcome."""
    taken = matcher.try_consume_tokens(tokens)
    if taken == len(tokens) and matcher.is_accepting():
        return Verdict(accepted=True)
    if taken < len(tokens):
        offset = len(tok.decode_bytes(tokens[:taken]))
        probe = matcher.deep_copy()  # an error state is permanent: keep the shared matcher clean
        probe.consume_token(tokens[taken])  # puts the reason into get_error()
        message = probe.get_error().split("\n<state>")[0] or "token rejected"
    else:
        offset = len(data)
        message = "input ended before the grammar was complete"
    line, column = _line_column(data, offset)
    return Verdict(accepted=False, offset=offset, line=line, column=column, message=message)


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
            line, column = _line_column(data, offset)
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


def accepts(grammar_text: str, source: str, tokenizer: llguidance.LLTokenizer | None = None) -> bool:
    """True when the whole of ``source`` is a sentence of the grammar (byte-level by default)."""
    return check_text(grammar_text, source, tokenizer).accepted


# ----------------------------------------------------------------------------- corpora


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
                line, column = _line_column(text.encode("utf-8"), offset)
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
