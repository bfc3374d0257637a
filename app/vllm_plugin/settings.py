"""The engine plugin's one settings object, read once per vLLM process from ``MAZE_*`` variables.

The plugin runs inside vLLM's processes, which inherit their environment from whoever started vLLM
(`app.vllm_argv.vllm_env` exports the profile's choices), so the environment is the only channel.
"""

from __future__ import annotations

import os

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


def default_mask_threads() -> int:
    """Half the CPUs this process may run on, at most 8: what vLLM's own fill pool would take.

    Only used when nobody chose (a bare `vllm serve` with the project installed); profiles set
    MAZE_MASK_THREADS explicitly from the cores they reserve.
    """
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        usable = os.cpu_count() or 1
    return max(1, min(8, usable // 2))


class EnginePluginSettings(BaseSettings):
    """Engine plugin configuration (env vars ``MAZE_*``)."""

    model_config = SettingsConfigDict(env_prefix="MAZE_", extra="ignore", frozen=True)

    engine_plugin: bool = True
    """``MAZE_ENGINE_PLUGIN=0`` leaves vLLM exactly as shipped: for comparison, and as an escape hatch."""

    mask_threads: int = Field(default_factory=default_mask_threads, ge=1, le=256)
    """Rust threads (llguidance's executor) that fill one engine step's grammar masks in parallel."""

    grammar_cache_entries: int = Field(default=128, ge=0)
    """Grammars whose idle matchers are kept per engine, least recently used dropped first; 0 turns
    the cache off (every request compiles its grammar, as vLLM does)."""

    grammar_cache_bytes: int = Field(default=64 * 1024 * 1024, ge=0)
    """Upper bound on the summed size of the kept grammars' serialized text, so user grammars cannot
    pin unbounded memory."""

    grammar_idle_matchers: int = Field(default=64, ge=0)
    """Idle warm matchers kept per grammar for the next requests (0.2-2 MiB each for the library
    grammars); about the number of sequences of one grammar the engine runs at once."""

    grammar_prewarm_matchers: int = Field(default=8, ge=0)
    """Matchers compiled per library grammar (grammars/*.lark) when the engine starts, so the first
    requests find warm ones; 0 turns pre-warming off."""
