"""Compile each distinct grammar once per engine; every request gets a copy.

vLLM's guidance backend builds a new `LLMatcher` for every request: 2-120 ms on the 152k-token Qwen
vocabulary, for the same few library grammars over and over. llguidance can copy a matcher instead
(`LLMatcher.deep_copy`, tens of microseconds), and copies share the compiled lexer and its caches.

The cache keeps one *pristine* matcher per grammar, never used to generate: it is compiled, then asked
for its first mask once, which fills the lexer caches every copy shares (a fresh Python matcher's
first mask costs ~30 ms; a copy of a warmed one, a fraction of a millisecond). Requests get
`deep_copy()`s, so their states never touch each other or the pristine one.

Concurrency: vLLM compiles grammars on a thread pool. Two requests that miss on the same grammar at
once compile it once: the first becomes the owner of a `Future`, the others wait on it.
Grammars llguidance rejects (a matcher in error state) are never cached, so a request with a broken
grammar meets exactly the error it would meet without the cache.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass

import llguidance
import llguidance.torch as llguidance_torch


@dataclass
class _Entry:
    matcher: Future[llguidance.LLMatcher]
    size: int


@dataclass(frozen=True)
class CacheStats:
    """Counters for logs and tests: how often the cache saved a compile."""

    hits: int
    misses: int
    evictions: int
    entries: int
    bytes: int


class CompiledGrammarCache:
    """A bounded LRU of pristine matchers, keyed by the grammar's serialized text.

    One cache belongs to one llguidance tokenizer (one engine), so the text alone identifies a
    compiled grammar. `max_entries=0` or `max_bytes=0` disables caching: every call compiles.
    """

    def __init__(self, *, max_entries: int, max_bytes: int, vocab_size: int) -> None:
        self._max_entries = max_entries
        self._max_bytes = max_bytes
        self._vocab_size = vocab_size
        self._entries: OrderedDict[bytes, _Entry] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()
        self._hits = self._misses = self._evictions = 0

    @property
    def enabled(self) -> bool:
        return self._max_entries > 0 and self._max_bytes > 0

    def stats(self) -> CacheStats:
        with self._lock:
            return CacheStats(self._hits, self._misses, self._evictions, len(self._entries), self._bytes)

    def matcher(self, grammar: str, compile_grammar: Callable[[str], llguidance.LLMatcher]) -> llguidance.LLMatcher:
        """A matcher for `grammar`, in its start state, owned by the caller.

        `compile_grammar` builds a fresh matcher from the text; it runs at most once per cached
        grammar, on the thread of the first caller.
        """
        size = len(grammar.encode())
        if not self.enabled or size > self._max_bytes:
            return compile_grammar(grammar)
        key = hashlib.sha256(grammar.encode()).digest()
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None:
                self._entries.move_to_end(key)
                self._hits += 1
                owner = False
            else:
                entry = _Entry(Future(), size)
                self._entries[key] = entry
                self._bytes += size
                self._misses += 1
                owner = True
                self._evict_over_bounds(keep=key)
        if owner:
            try:
                pristine = compile_grammar(grammar)
                if not pristine.is_error():
                    self._warm(pristine)
            except BaseException as exc:
                self._forget(key, entry)
                entry.matcher.set_exception(exc)
                raise
            if pristine.is_error():
                # Not cached: the caller gets this matcher itself, as without the cache.
                self._forget(key, entry)
                entry.matcher.set_result(pristine)
                return pristine
            entry.matcher.set_result(pristine)
        pristine = entry.matcher.result()
        return pristine.deep_copy()

    def _warm(self, pristine: llguidance.LLMatcher) -> None:
        """Compute the start state's mask once: it fills the lexer caches every copy shares."""
        scratch = llguidance_torch.allocate_token_bitmask(1, self._vocab_size)
        llguidance_torch.fill_next_token_bitmask(pristine, scratch, 0)

    def _forget(self, key: bytes, entry: _Entry) -> None:
        with self._lock:
            if self._entries.get(key) is entry:
                del self._entries[key]
                self._bytes -= entry.size

    def _evict_over_bounds(self, *, keep: bytes) -> None:
        """Drop least recently used grammars until both bounds hold (caller holds the lock)."""
        while len(self._entries) > self._max_entries or self._bytes > self._max_bytes:
            oldest = next(iter(self._entries))
            if oldest == keep:
                break
            entry = self._entries.pop(oldest)
            self._bytes -= entry.size
            self._evictions += 1
