"""The compiled-grammar cache: one compile per grammar, independent copies, bounded, errors uncached."""

from __future__ import annotations

import threading
import time

import llguidance
import llguidance.torch as llguidance_torch
import pytest
import torch

import grammars
from app.vllm_plugin.grammar_cache import CompiledGrammarCache

JSON = llguidance.grammar_from("grammar", grammars.load("json"))
PYTHON = llguidance.grammar_from("grammar", grammars.load("python"))


def counting_compiler(tokenizer: llguidance.LLTokenizer, delay_s: float = 0.0):  # type: ignore[no-untyped-def]
    calls: list[str] = []

    def build(text: str) -> llguidance.LLMatcher:
        calls.append(text)
        time.sleep(delay_s)
        return llguidance.LLMatcher(tokenizer, text)

    return build, calls


def mask(matcher: llguidance.LLMatcher, vocab_size: int) -> torch.Tensor:
    bitmask = llguidance_torch.allocate_token_bitmask(1, vocab_size)
    llguidance_torch.fill_next_token_bitmask(matcher, bitmask, 0)
    return bitmask[0].clone()


def test_a_grammar_compiles_once_and_every_caller_gets_its_own_copy(ll_tokenizer: llguidance.LLTokenizer) -> None:
    cache = CompiledGrammarCache(max_entries=8, max_bytes=1 << 20, vocab_size=ll_tokenizer.vocab_size)
    build, calls = counting_compiler(ll_tokenizer)
    first, second = cache.matcher(JSON, build), cache.matcher(JSON, build)
    assert len(calls) == 1
    assert first is not second
    # Advancing one copy leaves the other in the start state.
    assert first.consume_tokens(ll_tokenizer.tokenize_str('{"a"'))
    fresh = llguidance.LLMatcher(ll_tokenizer, JSON)
    assert torch.equal(mask(second, ll_tokenizer.vocab_size), mask(fresh, ll_tokenizer.vocab_size))
    assert not torch.equal(mask(first, ll_tokenizer.vocab_size), mask(second, ll_tokenizer.vocab_size))
    stats = cache.stats()
    assert (stats.hits, stats.misses, stats.entries) == (1, 1, 1)


def test_a_copy_masks_exactly_like_a_fresh_matcher_along_real_code(ll_tokenizer: llguidance.LLTokenizer) -> None:
    cache = CompiledGrammarCache(max_entries=8, max_bytes=1 << 20, vocab_size=ll_tokenizer.vocab_size)
    build, _ = counting_compiler(ll_tokenizer)
    cache.matcher(PYTHON, build)  # the pristine one is compiled and warmed
    copy, fresh = cache.matcher(PYTHON, build), llguidance.LLMatcher(ll_tokenizer, PYTHON)
    code = (
        "import os\n\n\ndef main(argv: list[str]) -> int:\n    for a in argv:\n        print(a, end='')\n    return 0\n"
    )
    for token in ll_tokenizer.tokenize_str(code):
        assert torch.equal(mask(copy, ll_tokenizer.vocab_size), mask(fresh, ll_tokenizer.vocab_size))
        assert copy.consume_token(token) and fresh.consume_token(token)
    assert copy.is_accepting() and fresh.is_accepting()


def test_concurrent_misses_on_one_grammar_compile_it_once(ll_tokenizer: llguidance.LLTokenizer) -> None:
    cache = CompiledGrammarCache(max_entries=8, max_bytes=1 << 20, vocab_size=ll_tokenizer.vocab_size)
    build, calls = counting_compiler(ll_tokenizer, delay_s=0.2)
    results: list[llguidance.LLMatcher] = []
    threads = [threading.Thread(target=lambda: results.append(cache.matcher(JSON, build))) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(calls) == 1
    assert len({id(m) for m in results}) == 6


def test_least_recently_used_grammars_go_first_when_the_count_is_reached(ll_tokenizer: llguidance.LLTokenizer) -> None:
    cache = CompiledGrammarCache(max_entries=2, max_bytes=1 << 20, vocab_size=ll_tokenizer.vocab_size)
    build, calls = counting_compiler(ll_tokenizer)
    a, b, c = (llguidance.grammar_from("regex", r) for r in ("a+", "b+", "c+"))
    cache.matcher(a, build)
    cache.matcher(b, build)
    cache.matcher(a, build)  # a is now the most recently used
    cache.matcher(c, build)  # evicts b
    assert cache.stats().evictions == 1
    cache.matcher(a, build)
    assert len(calls) == 3
    cache.matcher(b, build)
    assert len(calls) == 4


def test_the_byte_bound_evicts_and_a_grammar_above_it_is_never_cached(ll_tokenizer: llguidance.LLTokenizer) -> None:
    small = llguidance.grammar_from("regex", "x+")
    cache = CompiledGrammarCache(max_entries=100, max_bytes=len(JSON) + 10, vocab_size=ll_tokenizer.vocab_size)
    build, calls = counting_compiler(ll_tokenizer)
    cache.matcher(JSON, build)
    cache.matcher(small, build)  # together over the bound: JSON goes
    assert cache.stats().entries == 1
    assert cache.stats().bytes <= len(JSON) + 10
    cache.matcher(PYTHON, build)
    cache.matcher(PYTHON, build)
    assert calls.count(PYTHON) == 2


def test_a_grammar_llguidance_rejects_is_not_cached(ll_tokenizer: llguidance.LLTokenizer) -> None:
    broken = llguidance.grammar_from("grammar", "start: foo\n")  # foo is undefined
    cache = CompiledGrammarCache(max_entries=8, max_bytes=1 << 20, vocab_size=ll_tokenizer.vocab_size)
    build, calls = counting_compiler(ll_tokenizer)
    first = cache.matcher(broken, build)
    assert first.is_error() and "foo" in first.get_error()
    cache.matcher(broken, build)
    assert len(calls) == 2
    assert cache.stats().entries == 0


@pytest.mark.parametrize(("entries", "size"), [(0, 1 << 20), (8, 0)])
def test_a_zero_bound_turns_the_cache_off(ll_tokenizer: llguidance.LLTokenizer, entries: int, size: int) -> None:
    cache = CompiledGrammarCache(max_entries=entries, max_bytes=size, vocab_size=ll_tokenizer.vocab_size)
    build, calls = counting_compiler(ll_tokenizer)
    cache.matcher(JSON, build)
    cache.matcher(JSON, build)
    assert len(calls) == 2
