"""The parallel fill writes the same bits as vLLM's one-at-a-time fill, for every kind of matcher state."""

from __future__ import annotations

import llguidance
import llguidance.torch as llguidance_torch
import pytest
import torch

import grammars
from app.vllm_plugin.mask_fill import ParallelMaskFiller

SNIPPETS = {
    "python": "def f(x):\n    return x + 1\n",
    "typescript": "export function f(x: number): number {\n  return x + 1;\n}\n",
    "rust": "fn main() {\n    let x = vec![1, 2];\n}\n",
    "go": "package main\n\nfunc main() {\n\tx := 1\n}\n",
    "zig": 'const std = @import("std");\n',
    "json": '{"a": [1, 2, {"b": null}]}',
}


def matchers_at_many_states(tokenizer: llguidance.LLTokenizer) -> list[llguidance.LLMatcher]:
    """Matchers of every library grammar at several depths into real code, plus a stopped and a failed one."""
    result = []
    for name, code in SNIPPETS.items():
        grammar = llguidance.grammar_from("grammar", grammars.load(name))
        tokens = tokenizer.tokenize_str(code)
        for depth in (0, 1, len(tokens) // 2, len(tokens)):
            matcher = llguidance.LLMatcher(tokenizer, grammar)
            assert matcher.consume_tokens(tokens[:depth])
            result.append(matcher)
    stopped = llguidance.LLMatcher(tokenizer, llguidance.grammar_from("regex", "ab"))
    assert stopped.consume_tokens(tokenizer.tokenize_str("ab"))
    failed = llguidance.LLMatcher(tokenizer, llguidance.grammar_from("regex", "ab"))
    failed.consume_tokens(tokenizer.tokenize_str("zz"))
    assert failed.is_error()
    return [*result, stopped, failed]


@pytest.mark.parametrize("threads", [1, 2, 4])
def test_parallel_fill_is_bit_identical_to_the_serial_fill(ll_tokenizer: llguidance.LLTokenizer, threads: int) -> None:
    matchers = matchers_at_many_states(ll_tokenizer)
    # Rows out of order and with gaps, as vLLM's batch indices can be.
    rows = [2 * i + 1 for i in range(len(matchers))][::-1]
    serial = llguidance_torch.allocate_token_bitmask(2 * len(matchers) + 2, ll_tokenizer.vocab_size)
    parallel = serial.clone()
    for matcher, row in zip(matchers, rows, strict=True):
        llguidance_torch.fill_next_token_bitmask(matcher, serial, row)
    filler = ParallelMaskFiller(threads)
    filler.fill(list(zip(matchers, rows, strict=True)), parallel)
    filler.close()
    assert torch.equal(serial, parallel)
    # The rows vLLM did not hand over keep whatever they held (here: all ones).
    assert bool((parallel[0] == -1).all())


def test_one_row_is_filled_without_the_executor(ll_tokenizer: llguidance.LLTokenizer) -> None:
    matcher = llguidance.LLMatcher(ll_tokenizer, llguidance.grammar_from("grammar", grammars.load("json")))
    bitmask = llguidance_torch.allocate_token_bitmask(2, ll_tokenizer.vocab_size)
    filler = ParallelMaskFiller(4)
    filler.fill([(matcher, 1)], bitmask)
    assert filler._executor is None
    expected = llguidance_torch.allocate_token_bitmask(2, ll_tokenizer.vocab_size)
    llguidance_torch.fill_next_token_bitmask(matcher, expected, 1)
    assert torch.equal(bitmask, expected)


def test_closing_the_filler_ends_its_threads(ll_tokenizer: llguidance.LLTokenizer) -> None:
    import gc
    import os
    import time

    def threads() -> int:
        return len(os.listdir("/proc/self/task"))

    before = threads()
    grammar = llguidance.grammar_from("grammar", grammars.load("json"))
    matchers = [llguidance.LLMatcher(ll_tokenizer, grammar) for _ in range(4)]
    bitmask = llguidance_torch.allocate_token_bitmask(4, ll_tokenizer.vocab_size)
    filler = ParallelMaskFiller(3)
    filler.fill([(m, i) for i, m in enumerate(matchers)], bitmask)
    assert threads() >= before + 3
    filler.close()
    gc.collect()
    deadline = time.monotonic() + 5
    while threads() > before and time.monotonic() < deadline:
        time.sleep(0.05)
    assert threads() == before
