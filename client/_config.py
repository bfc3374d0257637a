"""Where the gateway is and how to reach it: arguments first, then ``MAZE_ENDPOINT_URL`` / ``MAZE_API_KEY``.

``ClientSettings`` is the one place the client (library and CLI) reads the environment.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from ._exceptions import ConfigurationError

ENDPOINT_ENV = "MAZE_ENDPOINT_URL"
API_KEY_ENV = "MAZE_API_KEY"


@dataclass(frozen=True)
class ClientSettings:
    """What the environment says about the gateway, read once; "" where a variable is unset."""

    endpoint_url: str = ""
    api_key: str = ""

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> ClientSettings:
        env = os.environ if env is None else env
        return cls(endpoint_url=env.get(ENDPOINT_ENV, ""), api_key=env.get(API_KEY_ENV, ""))


@dataclass(frozen=True)
class ClientConfig:
    """A gateway's root URL (no ``/v1``), its key, and the SDK's request timeout and retry count."""

    base_url: str
    api_key: str
    #: Seconds per request; generations of thousands of tokens take minutes.
    timeout: float = 600.0
    #: The SDK's own retries (connection errors, 408/409/429/5xx, honouring ``Retry-After``).
    max_retries: int = 2

    @property
    def openai_base_url(self) -> str:
        return f"{self.base_url}/v1"

    @classmethod
    def resolve(
        cls,
        base_url: str | None = None,
        api_key: str | None = None,
        *,
        timeout: float = 600.0,
        max_retries: int = 2,
        env: Mapping[str, str] | None = None,
    ) -> ClientConfig:
        settings = ClientSettings.from_env(env)
        url = base_url or settings.endpoint_url
        key = api_key or settings.api_key
        if not url:
            raise ConfigurationError(
                f"no gateway URL: pass base_url=... or set {ENDPOINT_ENV} (e.g. https://<app>.modal.run, without /v1)"
            )
        if not key:
            raise ConfigurationError(
                f"no API key: pass api_key=... or set {API_KEY_ENV} (a keyless local gateway accepts any placeholder)"
            )
        url = url.rstrip("/")
        url = url.removesuffix("/v1")  # tolerate the OpenAI-style URL people copy around
        return cls(base_url=url, api_key=key, timeout=timeout, max_retries=max_retries)
