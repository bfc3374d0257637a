"""The grammar cache: warm matchers handed from request to request, never shared, bounded, errors uncached."""

from __future__ import annotations

import llguidance
import llguidance.torch as llguidance_torch
import pytest
import torch

import grammars
from app.vllm_plugin.grammar_cache import CompiledGrammarCache

JSON = llguidance.grammar_from("grammar", grammars.load("json"))
PYTHON = llguidance.grammar_from("grammar", grammars.load("python"))
CODE = "import os\n\n\ndef main(argv: list[str]) -> int:\n    for a in argv:\n        print(a, end='')\n    return 0\n"


def counting_compiler(tokenizer: llguidance.LLTokenizer):  # type: ignore[no-untyped-def]
    calls: list[str] = []

    def build(text: str) -> llguidance.LLMatcher:
        calls.append(text)
        return llguidance.LLMatcher(tokenizer, text)

    return build, calls


def cache_for(tokenizer: llguidance.LLTokenizer, **bounds: int) -> CompiledGrammarCache:
    limits = {"max_grammars": 8, "max_bytes": 1 << 20, "max_idle": 4, **bounds}
    return CompiledGrammarCache(vocab_size=tokenizer.vocab_size, **limits)


def mask(matcher: llguidance.LLMatcher, vocab_size: int) -> torch.Tensor:
    bitmask = llguidance_torch.allocate_token_bitmask(1, vocab_size)
    llguidance_torch.fill_next_token_bitmask(matcher, bitmask, 0)
    return bitmask[0].clone()


def test_a_finished_requests_matcher_serves_the_next_request(
    ll_tokenizer: llguidance.LLTokenizer,
) -> None:
    cache = cache_for(ll_tokenizer)
    build, calls = counting_compiler(ll_tokenizer)
    first = cache.matcher(PYTHON, build)
    tokens = ll_tokenizer.tokenize_str(CODE)
    assert first.consume_tokens(tokens)
    cache.give_back(PYTHON, first)
    again = cache.matcher(PYTHON, build)
    assert again is first and len(calls) == 1
    # Reset to the start state: it masks exactly like a fresh matcher along the same code.
    fresh = llguidance.LLMatcher(ll_tokenizer, PYTHON)
    for token in tokens:
        assert torch.equal(mask(again, ll_tokenizer.vocab_size), mask(fresh, ll_tokenizer.vocab_size))
        assert again.consume_token(token) and fresh.consume_token(token)
    assert again.is_accepting()


def test_matchers_in_use_at_once_are_never_the_same_object(ll_tokenizer: llguidance.LLTokenizer) -> None:
    """Shared lexers serialize the parallel fill: each running request must own its matcher."""
    cache = cache_for(ll_tokenizer)
    build, calls = counting_compiler(ll_tokenizer)
    cache.prewarm(JSON, build, 2)
    in_use = [cache.matcher(JSON, build) for _ in range(4)]
    assert len({id(m) for m in in_use}) == 4
    assert len(calls) == 4  # two pre-warmed, two compiled when none was idle
    stats = cache.stats()
    assert (stats.reused, stats.compiled) == (2, 2)


def test_a_stopped_matcher_comes_back_usable_and_a_failed_one_does_not(ll_tokenizer: llguidance.LLTokenizer) -> None:
    regex = llguidance.grammar_from("regex", "ab")
    cache = cache_for(ll_tokenizer)
    build, _ = counting_compiler(ll_tokenizer)
    stopped, failed = cache.matcher(regex, build), cache.matcher(regex, build)
    assert stopped.consume_tokens(ll_tokenizer.tokenize_str("ab")) and stopped.is_stopped()
    failed.consume_tokens(ll_tokenizer.tokenize_str("zz"))
    assert failed.is_error()
    cache.give_back(regex, failed)
    cache.give_back(regex, stopped)
    assert cache.stats().idle == 1
    reused = cache.matcher(regex, build)
    assert reused is stopped and not reused.is_stopped()
    assert reused.consume_tokens(ll_tokenizer.tokenize_str("ab"))


def test_idle_matchers_are_bounded_per_grammar(ll_tokenizer: llguidance.LLTokenizer) -> None:
    cache = cache_for(ll_tokenizer, max_idle=2)
    build, _ = counting_compiler(ll_tokenizer)
    for matcher in [cache.matcher(JSON, build) for _ in range(5)]:
        cache.give_back(JSON, matcher)
    assert cache.stats().idle == 2


def test_least_recently_used_grammars_go_first_when_the_count_is_reached(ll_tokenizer: llguidance.LLTokenizer) -> None:
    cache = cache_for(ll_tokenizer, max_grammars=2)
    build, calls = counting_compiler(ll_tokenizer)
    a, b, c = (llguidance.grammar_from("regex", r) for r in ("a+", "b+", "c+"))
    for grammar in (a, b, a, c):  # a used again before c arrives: b is the least recently used
        cache.give_back(grammar, cache.matcher(grammar, build))
    assert cache.stats().evictions == 1
    cache.matcher(a, build)
    cache.matcher(c, build)
    assert len(calls) == 3
    cache.matcher(b, build)
    assert len(calls) == 4


def test_the_byte_bound_evicts_and_a_grammar_above_it_is_never_kept(ll_tokenizer: llguidance.LLTokenizer) -> None:
    small = llguidance.grammar_from("regex", "x+")
    cache = cache_for(ll_tokenizer, max_bytes=len(JSON) + 10)
    build, calls = counting_compiler(ll_tokenizer)
    cache.give_back(JSON, cache.matcher(JSON, build))
    cache.give_back(small, cache.matcher(small, build))  # together over the bound: JSON goes
    assert cache.stats().grammars == 1
    cache.give_back(PYTHON, cache.matcher(PYTHON, build))
    cache.matcher(PYTHON, build)
    assert calls.count(PYTHON) == 2


def test_a_grammar_llguidance_rejects_is_not_kept(ll_tokenizer: llguidance.LLTokenizer) -> None:
    broken = llguidance.grammar_from("grammar", "start: foo\n")  # foo is undefined
    cache = cache_for(ll_tokenizer)
    build, _ = counting_compiler(ll_tokenizer)
    first = cache.matcher(broken, build)
    assert first.is_error() and "foo" in first.get_error()
    cache.give_back(broken, first)
    cache.prewarm(broken, build, 2)
    assert cache.stats().idle == 0 and cache.stats().grammars == 0


@pytest.mark.parametrize(("grammars_kept", "size", "idle"), [(0, 1 << 20, 4), (8, 0, 4), (8, 1 << 20, 0)])
def test_a_zero_bound_turns_the_cache_off(
    ll_tokenizer: llguidance.LLTokenizer, grammars_kept: int, size: int, idle: int
) -> None:
    cache = cache_for(ll_tokenizer, max_grammars=grammars_kept, max_bytes=size, max_idle=idle)
    build, calls = counting_compiler(ll_tokenizer)
    cache.give_back(JSON, cache.matcher(JSON, build))
    cache.matcher(JSON, build)
    assert len(calls) == 2
