"""Whether a grammar compiles, and whether a text is a sentence of it, as llguidance decides.

This is what ``maze-inference check``, the smoke run and the tests mean by "accepts": the text is fed
token by token through an llguidance matcher, the same engine vLLM masks with, and must leave it
accepting. A rejection says where (byte offset, line and column) and llguidance's reason. Byte-level
by default (:mod:`grammars.tokenizers`): the same verdict as Qwen's tokenizer, with exact offsets.

Needs llguidance only; ``grammars/__init__`` (the loader) does not import this module.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import llguidance

from grammars.tokenizers import byte_tokenizer

__all__ = ["GrammarCompileError", "Verdict", "accepts", "check_text", "compiled", "line_column", "validate"]


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


def line_column(data: bytes, offset: int) -> tuple[int, int]:
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
    its lexer states warm. Not thread-safe: this module serves tests and command-line tools.
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
    line, column = line_column(data, offset)
    return Verdict(accepted=False, offset=offset, line=line, column=column, message=message)


def accepts(grammar_text: str, source: str, tokenizer: llguidance.LLTokenizer | None = None) -> bool:
    """True when the whole of ``source`` is a sentence of the grammar (byte-level by default)."""
    return check_text(grammar_text, source, tokenizer).accepted
