"""Warm matchers per grammar, handed from one request to the next instead of compiled for each.

vLLM's guidance backend builds a new `LLMatcher` for every request: 2-120 ms on the 152k-token Qwen
vocabulary, for the same few library grammars over and over, and the new matcher's first masks are
slow too, while its lexer learns the vocabulary (~30 ms for Python's first mask).

Copies made with `LLMatcher.deep_copy()` are cheap, but they share their original's lexer behind one
lock: measured on 16 cores, 64 copies of one Zig matcher filled their masks in 45 ms on 1, 2, 4 or 8
threads alike, where 64 independent matchers went from 56 ms to 8 ms. Parallel mask filling needs
every running sequence to own its lexer. So this cache never copies. It keeps, per grammar, the
matchers that finished requests left behind, each `reset()` to its start state (tens of
microseconds; its lexer stays warm), and hands one to the next request for that grammar; only when
none is free is a new one compiled. The library grammars get a few compiled at engine start.

Bounds: at most `max_grammars` grammars (least recently used dropped first, with their idle
matchers), at most `max_bytes` of grammar text among them, and at most `max_idle` idle matchers per
grammar. A matcher in an error state is never reused, and a grammar llguidance rejects is never
kept, so a broken grammar meets exactly the error it would meet without the cache.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

import llguidance
import llguidance.torch as llguidance_torch

from app.vllm_plugin.sized_lru import SizedLRU

Compile = Callable[[str], llguidance.LLMatcher]


@dataclass
class _Entry:
    idle: list[llguidance.LLMatcher] = field(default_factory=list)


@dataclass(frozen=True)
class CacheStats:
    """Counters for logs and tests: how often a request got a warm matcher instead of a compile."""

    reused: int
    compiled: int
    returned: int
    evictions: int
    grammars: int
    idle: int


class CompiledGrammarCache:
    """Idle, warm matchers per grammar text, for one llguidance tokenizer (one engine)."""

    def __init__(self, *, max_grammars: int, max_bytes: int, max_idle: int, vocab_size: int) -> None:
        self._max_grammars = max_grammars
        self._max_bytes = max_bytes
        self._max_idle = max_idle
        self._vocab_size = vocab_size
        self._entries: SizedLRU[bytes, _Entry] = SizedLRU(max_items=max_grammars, max_bytes=max_bytes)
        self._lock = threading.Lock()
        self._reused = self._compiled = self._returned = self._evictions = 0

    @property
    def enabled(self) -> bool:
        return self._max_grammars > 0 and self._max_bytes > 0 and self._max_idle > 0

    def stats(self) -> CacheStats:
        with self._lock:
            idle = sum(len(entry.idle) for entry in self._entries.values())
            return CacheStats(self._reused, self._compiled, self._returned, self._evictions, len(self._entries), idle)

    def matcher(self, grammar: str, compile_grammar: Compile) -> llguidance.LLMatcher:
        """A matcher for `grammar` in its start state, owned by the caller until `give_back`."""
        key = self._key(grammar)
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None and entry.idle:
                self._reused += 1
                return entry.idle.pop()
            self._compiled += 1
        return compile_grammar(grammar)

    def give_back(self, grammar: str, matcher: llguidance.LLMatcher) -> None:
        """Keep a matcher a finished request used, reset, for the next request of its grammar."""
        if not self.enabled or matcher.is_error() or not matcher.reset() or matcher.is_error():
            return
        self._keep(grammar, [matcher])

    def prewarm(self, grammar: str, compile_grammar: Compile, count: int) -> None:
        """Compile `count` matchers now and compute each one's first mask, so requests start warm."""
        matchers = []
        scratch = llguidance_torch.allocate_token_bitmask(1, self._vocab_size)
        for _ in range(count):
            matcher = compile_grammar(grammar)
            if matcher.is_error():
                return
            llguidance_torch.fill_next_token_bitmask(matcher, scratch, 0)
            matchers.append(matcher)
        self._keep(grammar, matchers)

    def _keep(self, grammar: str, matchers: list[llguidance.LLMatcher]) -> None:
        size = len(grammar.encode())
        if not self.enabled or size > self._max_bytes:
            return
        key = self._key(grammar)
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                entry = _Entry()
                self._evictions += self._entries.put(key, entry, size)
            room = self._max_idle - len(entry.idle)
            entry.idle.extend(matchers[: max(room, 0)])
            self._returned += min(len(matchers), max(room, 0))

    @staticmethod
    def _key(grammar: str) -> bytes:
        return hashlib.sha256(grammar.encode()).digest()
