"""The gateway's one settings object.

Every knob is an environment variable with the ``MAZE_`` prefix, read once when the process starts
and passed down explicitly; no module reads the environment on its own. Defaults are chosen for the
common deployment (vLLM on 127.0.0.1:8001 in the same container).
"""

from __future__ import annotations

import ipaddress
from typing import Annotated

from pydantic import Field, SecretStr, ValidationInfo, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict


class Settings(BaseSettings):
    """Gateway configuration (env vars ``MAZE_*``)."""

    model_config = SettingsConfigDict(env_prefix="MAZE_", extra="ignore", frozen=True)

    upstream_url: str = "http://127.0.0.1:8001"
    """Base URL of the OpenAI-compatible server (vLLM) the gateway fronts, without ``/v1``."""

    upstream_api_key: str | None = None
    """Key the gateway sends upstream, if vLLM was started with ``--api-key``."""

    api_keys: Annotated[list[str], NoDecode] = Field(default_factory=list)
    """Bearer keys clients may use, comma-separated in the env var; two keys allow rotation."""

    host: str = "127.0.0.1"
    port: int = 8000

    served_model_name: str | None = None
    """Model name used when a request omits ``model`` (and by ``/generate``); discovered from
    the upstream's ``/v1/models`` when unset."""

    upstream_wait_seconds: float = 60.0
    """How long a request waits for an upstream that is still starting before it gets 503."""

    upstream_timeout_seconds: float = 600.0
    """Read timeout for one upstream response (between streamed chunks, or a whole body)."""

    upstream_connect_timeout_seconds: float = 5.0

    upstream_keepalive_seconds: float = 4.0
    """An idle upstream connection is dropped after this long. It must be shorter than the upstream
    server's own keep-alive, or the gateway can send a request down a connection the server is closing
    at that moment, and the request fails before it started. vLLM's default is 5 s
    (``VLLM_HTTP_TIMEOUT_KEEP_ALIVE``); the vLLM that maze launches gets 60 s."""

    retry_after_seconds: int = 10
    """Value of ``Retry-After`` on 503 answers while the upstream is unavailable."""

    max_body_bytes: int = 2_000_000
    """Largest request body accepted (413 above it)."""

    max_header_bytes: int = Field(default=65_536, ge=1024)
    """Largest total size of a request's header names and values (431 above it)."""

    max_grammar_bytes: int = 256_000
    """Largest grammar / schema / regex text accepted (400 above it)."""

    max_regex_size: int = Field(default=100_000, ge=1)
    """Largest size of one regex in a constraint with each repetition ``{m,n}`` written out ``m`` times
    (what every match must contain; nested ones multiply; 400 above it). ``(a{1000}){1000}`` is
    1,000,000 and stalls vLLM's engine for seconds before failing; 100,000 costs a quarter of a second
    of mask time, and optional repetition ``{0,n}`` costs nothing (see ``gateway/regex_size.py``)."""

    grammar_cache_size: int = 256
    """How many grammar validation verdicts are kept (keyed by the grammar's hash)."""

    json_compact_whitespace: bool = True
    """Add ``x-guidance: {whitespace_flexible: false}`` to JSON schemas that do not say otherwise,
    so a weak model cannot run away in whitespace between tokens."""

    default_max_tokens: int = 512
    """``max_tokens`` for ``/generate`` requests that omit it."""

    max_batch_size: int = Field(default=64, ge=1)
    """Most items one ``/generate/batch`` request may carry (400 above it)."""

    max_batch_concurrency: int = Field(default=16, ge=1)
    """Most items of one batch in flight to vLLM at once; vLLM batches them on the GPU, and the cap
    keeps one large batch from crowding out other clients. A request may ask for fewer."""

    batch_deadline_seconds: float | None = Field(default=None, gt=0)
    """Longest one ``/generate/batch`` may take: the platform's limit on a request (Modal's function
    timeout) less a margin. A batch estimated to take longer is refused up front with 400
    ``batch_too_slow``, instead of a ``200`` whose body the platform cuts off. Unset: no estimate."""

    batch_tokens_per_second: float = Field(default=10.0, gt=0)
    """Decode rate the batch estimate assumes for each item in flight: a floor, the per-stream rate of a
    full, grammar-constrained GPU batch. ``modal_deploy.py`` sets it per profile."""

    max_concurrent_requests: int = Field(default=256, ge=1)
    """Most generation requests (chat, completions, ``/generate``, batch) in flight at once, streams held
    to their last byte. vLLM queues inside too; this bound keeps the gateway's own memory and sockets
    finite when clients outnumber what the GPU can batch."""

    max_queued_requests: int = Field(default=512, ge=0)
    """Most generation requests waiting for a slot; one more is refused at once with 429 + ``Retry-After``."""

    queue_wait_seconds: float = Field(default=30.0, ge=0)
    """Longest a queued request waits for a slot before it gets 429 + ``Retry-After``."""

    keepalive_after_seconds: float = Field(default=120.0, ge=0)
    """A non-streamed generation still unanswered after this long gets its 200 started at once,
    followed by a space every ``keepalive_interval_seconds`` and then the JSON body (see
    ``gateway/keepalive.py``): under Modal's 150 s limit on a response start. 0 turns it off."""

    keepalive_interval_seconds: float = Field(default=10.0, gt=0)
    """Seconds between the whitespace heartbeats of a kept-alive answer."""

    generate_system_prompt: str = (
        "You are a code generator. Answer with source code only: no prose, no Markdown fences."
    )

    fallback_url: str | None = None
    """Base URL of an OpenAI-compatible provider, as the openai SDK's ``base_url`` (usually ending in
    ``/v1``), that serves requests with no constraint or only a JSON schema while vLLM cannot. Unset:
    no fallback (the default); requests wait for vLLM, then get 503."""

    fallback_api_key: SecretStr | None = None
    """Bearer key for the fallback provider; a secret, never logged or shown in ``repr``."""

    fallback_model: str | None = Field(default=None, validate_default=True)
    """Model name sent to the fallback provider (required with ``fallback_url``)."""

    fallback_wait_seconds: float = Field(default=5.0, ge=0)
    """How long a request the fallback could serve waits for vLLM before it goes to the fallback
    (instead of ``upstream_wait_seconds``). Once vLLM was found down, later ones try it once, not for this long."""

    @field_validator("api_keys", mode="before")
    @classmethod
    def _split_keys(cls, value: object) -> object:
        if isinstance(value, str):
            return [key.strip() for key in value.split(",") if key.strip()]
        return value

    @field_validator("upstream_url")
    @classmethod
    def _strip_slash(cls, value: str) -> str:
        value = value.rstrip("/")
        if value.endswith("/v1"):
            value = value[: -len("/v1")]
        return value

    @field_validator("fallback_url")
    @classmethod
    def _strip_fallback_slash(cls, value: str | None) -> str | None:
        return (value or "").rstrip("/") or None

    @field_validator("fallback_model")
    @classmethod
    def _fallback_needs_model(cls, value: str | None, info: ValidationInfo) -> str | None:
        # A field validator, not a model one: its error shows only this field's input, never the key.
        if info.data.get("fallback_url") and not value:
            raise ValueError("MAZE_FALLBACK_URL is set but MAZE_FALLBACK_MODEL is not: name the provider's model")
        return value

    def is_loopback_only(self) -> bool:
        """True when ``host`` is reachable only from this machine."""
        if self.host == "localhost":
            return True
        try:
            return ipaddress.ip_address(self.host).is_loopback
        except ValueError:
            return False

    def check_exposure(self) -> None:
        """Refuse to serve a non-loopback address without keys: an open GPU is an open wallet."""
        if not self.api_keys and not self.is_loopback_only():
            raise InsecureConfigError(
                f"refusing to listen on {self.host} without API keys: set MAZE_API_KEYS "
                "(comma-separated) or listen on 127.0.0.1"
            )


class InsecureConfigError(ValueError):
    """The settings would expose the gateway without authentication."""
