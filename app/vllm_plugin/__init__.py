"""maze-inference's vLLM engine plugin: grammar masks filled in parallel, grammars compiled once.

vLLM loads it through the ``vllm.general_plugins`` entry point (pyproject.toml) in each of its
processes, the engine core included, before the engine builds its structured-output manager; `register`
is that entry point. It changes vLLM only when all of these hold, and otherwise logs one line and
leaves vLLM as shipped:

- ``MAZE_ENGINE_PLUGIN`` is not ``0``;
- the installed vLLM is a reviewed version whose patched source is unchanged (`guard`).

What it changes is listed in `patches`; the knobs are in `settings` (``MAZE_MASK_THREADS``,
``MAZE_GRAMMAR_CACHE_ENTRIES``, ``MAZE_GRAMMAR_CACHE_BYTES``, ``MAZE_GRAMMAR_IDLE_MATCHERS``,
``MAZE_GRAMMAR_PREWARM_MATCHERS``).
"""

from __future__ import annotations

import logging

__all__ = ["register"]

logger = logging.getLogger("vllm.maze_engine_plugin")


def register() -> None:
    """vLLM's general-plugin hook: decide once per process, then patch or leave vLLM alone."""
    import vllm

    from app.vllm_plugin import guard, patches
    from app.vllm_plugin.settings import EnginePluginSettings

    settings = EnginePluginSettings()
    if not settings.engine_plugin:
        logger.info("maze engine plugin: off (MAZE_ENGINE_PLUGIN=0); vLLM runs as shipped")
        return
    verdict = guard.check(vllm.__version__)
    if not verdict.ok:
        logger.warning("maze engine plugin: not applied, vLLM runs as shipped: %s", verdict.reason)
        return
    patches.install(settings)
    logger.info(
        "maze engine plugin: on for %s; masks on %d threads, grammar cache %d grammars / %d MiB / %d idle "
        "matchers each, %d pre-warmed per library grammar",
        verdict.reason,
        settings.mask_threads,
        settings.grammar_cache_entries,
        settings.grammar_cache_bytes // (1024 * 1024),
        settings.grammar_idle_matchers,
        settings.grammar_prewarm_matchers,
    )
