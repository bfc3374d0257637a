"""The grammar lab's one settings object: where fetched corpora and cached parser verdicts live.

Environment variables with the ``MAZE_`` prefix, read once per process (the first call of
:func:`settings`), never at import.
"""

from __future__ import annotations

import functools
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class LabSettings(BaseSettings):
    """Grammar lab configuration (env vars ``MAZE_*``)."""

    model_config = SettingsConfigDict(env_prefix="MAZE_", extra="ignore", frozen=True)

    corpus_dir: Path = Field(default_factory=lambda: Path.home() / ".cache" / "maze-inference" / "corpus")
    """Where fetched sources (npm packages, unpacked wheels) and the parser-verdict cache live
    (``MAZE_CORPUS_DIR``): outside the checkout, since they are tens of megabytes of others' code."""

    @property
    def npm_dir(self) -> Path:
        """The npm project the TypeScript corpus and parser are installed into."""
        return self.corpus_dir / "npm"

    @property
    def pypi_dir(self) -> Path:
        """Where downloaded wheels are unpacked (nothing installed)."""
        return self.corpus_dir / "pypi"

    @property
    def verdicts_dir(self) -> Path:
        """One JSON file per language: the real parser's verdict per file content hash."""
        return self.corpus_dir / "verdicts"


@functools.cache
def settings() -> LabSettings:
    """The settings of this process, read from the environment on first use."""
    return LabSettings()
