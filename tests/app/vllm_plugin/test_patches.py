"""The patches on vLLM's own classes: the step's rows go through the parallel filler and equal vLLM's own
fill; a request's matcher goes back to the cache when vLLM drops its grammar object.

The manager and backend are vLLM's classes with only the attributes these methods read, so the code
under test is vLLM 0.32's `grammar_bitmask` and the plugin's wrappers, not a re-implementation.
"""

from __future__ import annotations

import gc
from types import SimpleNamespace
from typing import Any

import llguidance
import llguidance.torch as llguidance_torch
import pytest
import torch
from vllm.v1.structured_output import StructuredOutputManager
from vllm.v1.structured_output.backend_guidance import GuidanceGrammar
from vllm.v1.structured_output.backend_types import StructuredOutputOptions

import grammars
from app.vllm_plugin import patches
from app.vllm_plugin.grammar_cache import CompiledGrammarCache
from app.vllm_plugin.mask_fill import ParallelMaskFiller
from app.vllm_plugin.settings import EnginePluginSettings

CODE = "def f(x):\n    return [y for y in x if y]\n"


@pytest.fixture(scope="module", autouse=True)
def installed() -> None:
    patches.install(EnginePluginSettings(mask_threads=2, grammar_prewarm_matchers=0))


class SpyFiller(ParallelMaskFiller):
    def __init__(self) -> None:
        super().__init__(2)
        self.calls: list[int] = []

    def fill(self, rows: list[tuple[llguidance.LLMatcher, int]], bitmask: torch.Tensor) -> None:
        self.calls.append(len(rows))
        super().fill(rows, bitmask)


def manager(ll_tokenizer: llguidance.LLTokenizer, rows: int) -> Any:
    """A StructuredOutputManager holding what grammar_bitmask reads, no engine behind it."""
    som = object.__new__(StructuredOutputManager)
    som.vllm_config = SimpleNamespace(
        num_speculative_tokens=0,
        model_config=SimpleNamespace(is_diffusion=False),
        scheduler_config=SimpleNamespace(max_num_seqs=rows),
    )
    som.backend = SimpleNamespace(
        allocate_token_bitmask=lambda n: llguidance_torch.allocate_token_bitmask(n, ll_tokenizer.vocab_size)
    )
    som._grammar_bitmask = None
    som._full_mask = torch.tensor(-1, dtype=torch.int32)
    som.fill_bitmask_parallel_threshold = 128
    som.enable_in_reasoning = False
    som.reasoner_cls = None
    som._maze_filler = SpyFiller()
    som._maze_pending = None
    return som


def requests(ll_tokenizer: llguidance.LLTokenizer) -> dict[str, Any]:
    """Python matchers at several depths, one terminated grammar, and one JSON matcher."""
    python = llguidance.grammar_from("grammar", grammars.load("python"))
    tokens = ll_tokenizer.tokenize_str(CODE)
    found = {}
    for depth in (0, 3, len(tokens) // 2, len(tokens)):
        matcher = llguidance.LLMatcher(ll_tokenizer, python)
        assert matcher.consume_tokens(tokens[:depth])
        found[f"py{depth}"] = GuidanceGrammar(matcher, ll_tokenizer, ll_tokenizer.vocab_size)
    done = GuidanceGrammar(llguidance.LLMatcher(ll_tokenizer, python), ll_tokenizer, ll_tokenizer.vocab_size)
    done.terminated = True
    found["done"] = done
    json = llguidance.LLMatcher(ll_tokenizer, llguidance.grammar_from("grammar", grammars.load("json")))
    found["json"] = GuidanceGrammar(json, ll_tokenizer, ll_tokenizer.vocab_size)
    return {
        rid: SimpleNamespace(structured_output_request=SimpleNamespace(grammar=g, reasoning_ended=None, reasoner=None))
        for rid, g in found.items()
    }


def test_a_step_fills_its_rows_in_parallel_and_equal_to_vllms_own_fill(ll_tokenizer: llguidance.LLTokenizer) -> None:
    reqs = requests(ll_tokenizer)
    ids = list(reqs)
    patched = manager(ll_tokenizer, len(ids))
    shipped = manager(ll_tokenizer, len(ids))
    got = patched.grammar_bitmask(reqs, ids, {}).copy()
    expected = StructuredOutputManager.grammar_bitmask.__wrapped__(shipped, reqs, ids, {})
    assert patched._maze_filler.calls == [len(ids) - 1]  # every row but the terminated grammar's
    assert shipped._maze_filler.calls == []
    assert (got == expected).all()
    assert (got[ids.index("done")] == -1).all()  # a finished grammar's row allows everything, as in vLLM


def test_one_constrained_row_takes_vllms_own_path(ll_tokenizer: llguidance.LLTokenizer) -> None:
    reqs = requests(ll_tokenizer)
    som = manager(ll_tokenizer, 1)
    som.grammar_bitmask(reqs, ["json"], {})
    assert som._maze_filler.calls == []


def test_a_requests_matcher_returns_to_the_cache_when_vllm_drops_its_grammar(
    ll_tokenizer: llguidance.LLTokenizer,
) -> None:
    from vllm.v1.structured_output.backend_guidance import GuidanceBackend

    backend = object.__new__(GuidanceBackend)
    backend.disable_any_whitespace = False
    backend.disable_additional_properties = False
    backend.ll_tokenizer = ll_tokenizer
    backend.vocab_size = ll_tokenizer.vocab_size
    backend._maze_cache = CompiledGrammarCache(
        max_grammars=4, max_bytes=1 << 20, max_idle=4, vocab_size=ll_tokenizer.vocab_size
    )
    backend._maze_build = lambda text: llguidance.LLMatcher(ll_tokenizer, text)
    grammar = backend.compile_grammar(StructuredOutputOptions.GRAMMAR, grammars.load("json"))
    matcher = grammar.ll_matcher
    assert grammar.accept_tokens("r1", ll_tokenizer.tokenize_str('{"a": 1'))
    del grammar
    gc.collect()
    assert backend._maze_cache.stats().idle == 1
    again = backend.compile_grammar(StructuredOutputOptions.GRAMMAR, grammars.load("json"))
    assert again.ll_matcher is matcher  # reused, and back at the start
    assert again.ll_matcher.consume_tokens(ll_tokenizer.tokenize_str('{"b": 2}'))
    stats = backend._maze_cache.stats()
    assert (stats.compiled, stats.reused) == (1, 1)
