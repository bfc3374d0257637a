"""What the process layer reads from the environment: one settings object, built once per command.

``python -m app`` builds it in ``cli.main`` and hands it down; nothing else in ``app/`` reads the
environment. The gateway has its own (``gateway/settings.py``), and so does the engine plugin inside
vLLM's processes (``app/vllm_plugin/settings.py``). Environment handed to child processes (vLLM's,
``app serve``'s) is written where the child is started, not read here. An empty variable counts as unset.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from app.profiles import DEFAULT_PROFILE


class AppSettings(BaseSettings):
    """``python -m app`` configuration (env vars ``MAZE_*``); command-line flags override it."""

    model_config = SettingsConfigDict(env_prefix="MAZE_", extra="ignore", frozen=True, env_ignore_empty=True)

    profile: str = DEFAULT_PROFILE
    """Hardware/model profile ``serve`` runs (``--profile``)."""

    served_model_name: str | None = None
    """Model name clients send (``--served-model-name``); unset: the HF id, or the tiny model's name."""

    log_dir: Path | None = None
    """Directory for vLLM's log (``--log-dir``); unset: vLLM writes to the terminal."""

    cache_dir: Path = Field(default_factory=lambda: Path.home() / ".cache" / "maze-inference")
    """Where the tiny model is built once and reused: per user, so every run and test session shares one copy."""

    @property
    def tiny_model_dir(self) -> Path:
        return self.cache_dir / "tiny-model"
