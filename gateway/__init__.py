"""maze-inference gateway: an OpenAI-compatible front for vLLM that guarantees grammar constraints."""

from .app import create_app
from .settings import InsecureConfigError, Settings

__all__ = ["InsecureConfigError", "Settings", "create_app"]
