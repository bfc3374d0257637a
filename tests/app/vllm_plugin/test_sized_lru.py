"""The bounded LRU both grammar caches keep their grammars in."""

from __future__ import annotations

from app.vllm_plugin.sized_lru import SizedLRU


def test_the_oldest_go_first_when_either_bound_is_passed() -> None:
    lru: SizedLRU[str, int] = SizedLRU(max_items=3, max_bytes=10)
    assert [lru.put(k, i, 3) for i, k in enumerate("abc")] == [0, 0, 0]
    assert lru.get("a") == 0  # "b" is now the oldest
    assert lru.put("d", 3, 3) == 1  # four items: "b" goes
    assert "b" not in lru and len(lru) == 3
    assert lru.put("e", 4, 7) == 2  # 3 + 3 + 3 + 7 bytes: "c" and "a" go
    assert list(lru.values()) == [3, 4]


def test_a_value_put_again_counts_its_new_size_once() -> None:
    lru: SizedLRU[str, str] = SizedLRU(max_items=5, max_bytes=10)
    lru.put("a", "small", 2)
    lru.put("a", "large", 9)
    assert lru.put("b", "b", 2) == 1  # 9 + 2 > 10: "a" goes, not counted twice
    assert lru.get("a") is None and lru.get("b") == "b"


def test_nothing_is_kept_beyond_the_whole_budget() -> None:
    lru: SizedLRU[str, int] = SizedLRU(max_items=2, max_bytes=10)
    assert lru.put("huge", 1, 11) == 0 and len(lru) == 0
    assert SizedLRU[str, int](max_items=0, max_bytes=10).put("a", 1, 1) == 0
