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
from collections import OrderedDict
from collections.abc import Hashable


class ValidatedGrammars:
    """Grammar keys that passed vLLM's validation, most recently used last."""

    def __init__(self, *, max_grammars: int, max_bytes: int) -> None:
        self._max_grammars = max_grammars
        self._max_bytes = max_bytes
        self._sizes: OrderedDict[Hashable, int] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    @property
    def enabled(self) -> bool:
        return self._max_grammars > 0 and self._max_bytes > 0

    def passed(self, key: Hashable) -> bool:
        """Whether `key` passed before (and count the lookup)."""
        with self._lock:
            if key in self._sizes:
                self._sizes.move_to_end(key)
                self.hits += 1
                return True
            self.misses += 1
            return False

    def remember(self, key: Hashable, size: int) -> None:
        """Keep `key`, `size` bytes of grammar text, as passed; drop the oldest over the bounds."""
        if not self.enabled or size > self._max_bytes:
            return
        with self._lock:
            if key in self._sizes:
                self._sizes.move_to_end(key)
                return
            self._sizes[key] = size
            self._bytes += size
            while len(self._sizes) > self._max_grammars or self._bytes > self._max_bytes:
                _, dropped = self._sizes.popitem(last=False)
                self._bytes -= dropped

    def __len__(self) -> int:
        return len(self._sizes)
