"""Grammars vLLM's API server has already validated, so the next request with one is not compiled again.

Before a constrained request reaches the engine, vLLM's API server checks its grammar:
`validate_guidance_grammar` compiles it with llguidance (Python 10-16 ms, TypeScript 7-10, JSON 1 ms
on the test machine), holding the GIL on the server's one event-loop thread. Sixty-four requests that
arrive together are compiled one after another, so the last waits about a second for its first
token and every stream the server is sending stalls meanwhile; measured on an H100 with the engine's
masks already parallel, time to first token at 64 streams was still 3-8x the unconstrained one,
ordered by each grammar's compile time.

The verdict depends only on the grammar (kind and text) and the tokenizer, so a grammar that passed
once passes again: this cache remembers grammars that passed. Only successes are kept, so a bad
grammar meets vLLM's own check and error every time; and only checks made without an llguidance
tokenizer (vLLM passes one for Mistral's Tekken tokenizers alone), so the key is the grammar alone.
Bounded by count and by the summed size of the kept grammar text, least recently used dropped first.
"""

from __future__ import annotations

import threading
from collections.abc import Hashable

from app.vllm_plugin.sized_lru import SizedLRU


class ValidatedGrammars:
    """Grammar keys that passed vLLM's validation, most recently used last."""

    def __init__(self, *, max_grammars: int, max_bytes: int) -> None:
        self._passed: SizedLRU[Hashable, bool] = SizedLRU(max_items=max_grammars, max_bytes=max_bytes)
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    @property
    def enabled(self) -> bool:
        return self._passed.max_items > 0 and self._passed.max_bytes > 0

    def passed(self, key: Hashable) -> bool:
        """Whether `key` passed before (and count the lookup)."""
        with self._lock:
            if self._passed.get(key):
                self.hits += 1
                return True
            self.misses += 1
            return False

    def remember(self, key: Hashable, size: int) -> None:
        """Keep `key`, `size` bytes of grammar text, as passed; drop the oldest over the bounds."""
        with self._lock:
            self._passed.put(key, True, size)

    def __len__(self) -> int:
        return len(self._passed)
