"""Least-recently-used values bounded by their count and by their summed size in bytes.

Both of the plugin's grammar caches (warm matchers in the engine, grammars that passed the API
server's check) must stay bounded however many distinct grammars users send, by how many grammars
and by how much grammar text. This is that bookkeeping, once. Not thread-safe: callers hold their
own lock around it, since each also updates its own state under that lock.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable, Iterator
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class SizedLRU(Generic[K, V]):
    """At most `max_items` values and `max_bytes` of their sizes; the least recently used go first."""

    def __init__(self, *, max_items: int, max_bytes: int) -> None:
        self.max_items = max_items
        self.max_bytes = max_bytes
        self._items: OrderedDict[K, tuple[V, int]] = OrderedDict()
        self._bytes = 0

    def get(self, key: K) -> V | None:
        """The value under `key`, now the most recently used, or None."""
        item = self._items.get(key)
        if item is None:
            return None
        self._items.move_to_end(key)
        return item[0]

    def __contains__(self, key: K) -> bool:
        return key in self._items

    def put(self, key: K, value: V, size: int) -> int:
        """Keep `value` as the most recently used, then drop the oldest until both bounds hold.

        Returns how many values were dropped. A value larger than `max_bytes` alone is not kept.
        """
        if size > self.max_bytes or self.max_items < 1:
            return 0
        old = self._items.pop(key, None)
        if old is not None:
            self._bytes -= old[1]
        self._items[key] = (value, size)
        self._bytes += size
        dropped = 0
        while len(self._items) > self.max_items or self._bytes > self.max_bytes:
            _, (_, oldest_size) = self._items.popitem(last=False)
            self._bytes -= oldest_size
            dropped += 1
        return dropped

    def values(self) -> Iterator[V]:
        return (value for value, _ in self._items.values())

    def __len__(self) -> int:
        return len(self._items)
