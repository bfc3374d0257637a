"""The patches themselves: wrap vLLM's structured-output manager and guidance backend in place.

Applied by `app.vllm_plugin.register` only after the guard accepted the installed vLLM. Everything
is done to the classes, not to module globals, because vLLM's engine core imported
`StructuredOutputManager` by name before any plugin loads; patching the class reaches that name too.

What changes, and nothing else:
- `grammar_bitmask` (one engine step's masks): without speculative tokens and with at least two
  constrained sequences, rows that vLLM would fill one by one through `_fill_bitmasks` are collected
  instead, then filled together by `ParallelMaskFiller` before the bitmask is returned. Nothing
  advances a grammar between two fills of such a step, so every row sees the state it would have
  seen. With speculative tokens vLLM's own code runs untouched: there the fills interleave with
  accepting draft tokens.
- `GuidanceBackend.compile_grammar`: a request gets an idle warm matcher of its grammar from
  `CompiledGrammarCache` when one is free, else one built exactly as vLLM builds it; when vLLM drops
  the request's grammar object, its matcher goes back to the cache.
- `StructuredOutputManager.__init__`: when the engine is configured for the guidance backend, the
  backend is created at once (vLLM would create it at the first constrained request) and matchers of
  the library grammars are compiled on vLLM's compile pool while the engine waits for traffic.
- `clear_backend`: also releases the fill executor.
- `backend_guidance.validate_guidance_grammar` (the API server's check of each request's grammar,
  which `SamplingParams` looks up in that module at every call): a grammar that passed before, checked
  without an llguidance tokenizer, passes without being compiled again (`ValidatedGrammars`).
"""

from __future__ import annotations

import functools
import logging
import os
import weakref
from collections.abc import Callable
from typing import Any

import llguidance

from app.vllm_plugin.grammar_cache import CompiledGrammarCache
from app.vllm_plugin.mask_fill import ParallelMaskFiller
from app.vllm_plugin.settings import EnginePluginSettings
from app.vllm_plugin.validation_cache import ValidatedGrammars

logger = logging.getLogger("vllm.maze_engine_plugin")

#: Set on the patched class, so a second `install` (vLLM loads general plugins once per process, but
#: tests may call it again) never wraps a wrapper.
_MARK = "_maze_engine_plugin"


def install(settings: EnginePluginSettings) -> None:
    """Patch vLLM's classes in this process (idempotent)."""
    from vllm.v1.structured_output import StructuredOutputManager, backend_guidance

    if getattr(StructuredOutputManager, _MARK, False):
        return
    manager = StructuredOutputManager
    manager.__init__ = _wrap_init(manager.__init__, settings, backend_guidance)
    manager._fill_bitmasks = _wrap_fill_bitmasks(manager._fill_bitmasks, backend_guidance.GuidanceGrammar)
    manager.grammar_bitmask = _wrap_grammar_bitmask(manager.grammar_bitmask)
    manager.clear_backend = _wrap_clear_backend(manager.clear_backend)
    backend = backend_guidance.GuidanceBackend
    backend.__post_init__ = _wrap_backend_post_init(backend.__post_init__, settings)
    backend.compile_grammar = _cached_compile_grammar(backend_guidance)
    backend_guidance.validate_guidance_grammar = _cached_validate(
        backend_guidance.validate_guidance_grammar,
        backend_guidance.get_structured_output_key,
        ValidatedGrammars(max_grammars=settings.grammar_cache_entries, max_bytes=settings.grammar_cache_bytes),
    )
    setattr(manager, _MARK, True)


def _wrap_init(
    original: Callable[..., None], settings: EnginePluginSettings, backend_guidance: Any
) -> Callable[..., None]:
    @functools.wraps(original)
    def __init__(self: Any, vllm_config: Any) -> None:
        original(self, vllm_config)
        self._maze_filler = ParallelMaskFiller(settings.mask_threads)
        self._maze_pending = None
        if settings.grammar_prewarm_matchers:
            _prewarm_library(self, vllm_config, backend_guidance, settings.grammar_prewarm_matchers)

    return __init__


def _prewarm_library(manager: Any, vllm_config: Any, backend_guidance: Any, count: int) -> None:
    """Create the guidance backend now and compile `count` matchers per library grammar on vLLM's compile pool."""
    if vllm_config.structured_outputs_config.backend != "guidance" or vllm_config.model_config.skip_tokenizer_init:
        return
    from vllm.v1.structured_output.backend_types import StructuredOutputOptions

    import grammars

    try:
        manager.backend = backend_guidance.GuidanceBackend(
            vllm_config, tokenizer=manager.tokenizer, vocab_size=vllm_config.model_config.get_vocab_size()
        )
    except Exception:  # vLLM would meet the same error at the first request and report it there
        logger.exception("maze engine plugin: could not create the guidance backend early; vLLM will at first use")
        manager.backend = None
        return
    backend = manager.backend
    names = grammars.names()
    for name in names:
        serialized = _serialize(backend_guidance, backend, StructuredOutputOptions.GRAMMAR, grammars.load(name))
        future = manager.executor.submit(backend._maze_cache.prewarm, serialized, backend._maze_build, count)
        future.add_done_callback(functools.partial(_log_prewarm_failure, name))
    logger.info(
        "maze engine plugin: compiling %d matchers of each library grammar in the background: %s",
        count,
        ", ".join(names),
    )


def _serialize(backend_guidance: Any, backend: Any, request_type: Any, grammar_spec: str) -> str:
    """The grammar text vLLM compiles for a request: the cache's key, so pre-warmed and requested agree."""
    serialized: str = backend_guidance.serialize_guidance_grammar(
        request_type, grammar_spec, backend.disable_any_whitespace, backend.disable_additional_properties
    )
    return serialized


def _log_prewarm_failure(name: str, future: Any) -> None:
    if future.exception() is not None:
        logger.warning("maze engine plugin: library grammar %s did not compile: %s", name, future.exception())


def _wrap_fill_bitmasks(original: Callable[..., None], guidance_grammar: type[Any]) -> Callable[..., None]:
    @functools.wraps(original)
    def _fill_bitmasks(self: Any, batch: Any) -> None:
        pending: list[tuple[Any, int]] | None = self._maze_pending
        if pending is None:
            original(self, batch)
            return
        rest = []
        for grammar, index, apply_bitmask in batch:
            if apply_bitmask and isinstance(grammar, guidance_grammar) and not grammar.is_terminated():
                pending.append((grammar, index))
            else:
                rest.append((grammar, index, apply_bitmask))
        if rest:
            original(self, rest)

    return _fill_bitmasks


def _wrap_grammar_bitmask(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    def grammar_bitmask(self: Any, requests: Any, structured_output_request_ids: list[str], spec_tokens: Any) -> Any:
        if self.vllm_config.num_speculative_tokens or len(structured_output_request_ids) < 2:
            return original(self, requests, structured_output_request_ids, spec_tokens)
        pending: list[tuple[Any, int]] = []
        self._maze_pending = pending
        try:
            bitmask = original(self, requests, structured_output_request_ids, spec_tokens)
        finally:
            self._maze_pending = None
        if pending:
            # `bitmask` is a numpy view of `_grammar_bitmask`: rows written now are in it.
            self._maze_filler.fill([(grammar.ll_matcher, index) for grammar, index in pending], self._grammar_bitmask)
            for grammar, _ in pending:
                grammar.check_error()
        return bitmask

    return grammar_bitmask


def _wrap_clear_backend(original: Callable[..., None]) -> Callable[..., None]:
    @functools.wraps(original)
    def clear_backend(self: Any) -> None:
        original(self)
        self._maze_filler.close()

    return clear_backend


def _wrap_backend_post_init(original: Callable[..., None], settings: EnginePluginSettings) -> Callable[..., None]:
    @functools.wraps(original)
    def __post_init__(self: Any) -> None:
        original(self)
        self._maze_cache = CompiledGrammarCache(
            max_grammars=settings.grammar_cache_entries,
            max_bytes=settings.grammar_cache_bytes,
            max_idle=settings.grammar_idle_matchers,
            vocab_size=self.ll_tokenizer.vocab_size,
        )

        def build(text: str) -> llguidance.LLMatcher:
            """The matcher exactly as vLLM's `compile_grammar` builds it."""
            return llguidance.LLMatcher(
                self.ll_tokenizer, text, log_level=int(os.environ.get("LLGUIDANCE_LOG_LEVEL", "1"))
            )

        self._maze_build = build

    return __post_init__


def _cached_compile_grammar(backend_guidance: Any) -> Callable[..., Any]:
    """`GuidanceBackend.compile_grammar` with the matcher taken from, and later returned to, the cache."""

    def compile_grammar(self: Any, request_type: Any, grammar_spec: str, stop_token_ids: Any = None) -> Any:
        serialized = _serialize(backend_guidance, self, request_type, grammar_spec)
        self.serialized_grammar = serialized
        cache: CompiledGrammarCache = self._maze_cache
        matcher = cache.matcher(serialized, self._maze_build)
        grammar = backend_guidance.GuidanceGrammar(
            ll_matcher=matcher, ll_tokenizer=self.ll_tokenizer, vocab_size=self.vocab_size
        )
        # vLLM drops the grammar object with its finished (or aborted, or failed) request; nothing
        # else holds the matcher, so it can serve the next request of the same grammar.
        weakref.finalize(grammar, cache.give_back, serialized, matcher)
        grammar.check_error()
        return grammar

    return compile_grammar


def _cached_validate(
    original: Callable[..., None], structured_output_key: Callable[[Any], tuple[Any, str]], validated: ValidatedGrammars
) -> Callable[..., None]:
    """vLLM's grammar check, skipped for a grammar that passed it before (see `validation_cache`)."""

    @functools.wraps(original)
    def validate_guidance_grammar(sampling_params: Any, tokenizer: Any = None) -> None:
        params = sampling_params.structured_outputs
        if params is None or tokenizer is not None or not validated.enabled:
            return original(sampling_params, tokenizer)
        try:
            key = structured_output_key(params)
        except Exception:  # no usable constraint: vLLM's own check reports it
            return original(sampling_params, tokenizer)
        if validated.passed(key):
            return None
        original(sampling_params, tokenizer)
        validated.remember(key, len(key[1].encode()))
        return None

    return validate_guidance_grammar
