"""What the gateway holds for its lifetime, created in the lifespan and read by routes."""

from __future__ import annotations

from dataclasses import dataclass, field

from fastapi import Request

from .constraints import ConstraintPolicy
from .drain import Drain
from .errors import UpstreamError
from .fallback import Fallback
from .grammar_check import GrammarValidator
from .metrics import Metrics
from .settings import Settings
from .upstream import Upstream


@dataclass
class GatewayState:
    settings: Settings
    upstream: Upstream
    validator: GrammarValidator
    metrics: Metrics
    fallback: Fallback | None = None
    """The managed provider that serves JSON-only requests while vLLM cannot (``MAZE_FALLBACK_URL``)."""
    drain: Drain = field(default_factory=Drain)
    """Upstream streams in flight, closed with an error event when shutdown cannot wait for them."""
    _model_name: str | None = field(default=None)

    @property
    def policy(self) -> ConstraintPolicy:
        return ConstraintPolicy(
            max_grammar_bytes=self.settings.max_grammar_bytes,
            json_compact_whitespace=self.settings.json_compact_whitespace,
            max_regex_size=self.settings.max_regex_size,
        )

    async def model_name(self, wait_seconds: float | None = None) -> str:
        """The served model's name: from settings, else asked once of the upstream (waiting as
        :meth:`Upstream.request` does)."""
        if self.settings.served_model_name:
            return self.settings.served_model_name
        if self._model_name is None:
            response = await self.upstream.request("GET", "/v1/models", wait_seconds=wait_seconds)
            try:
                self._model_name = response.json()["data"][0]["id"]
            except (ValueError, KeyError, IndexError, TypeError) as exc:
                raise UpstreamError(
                    f"could not read the served model from the upstream's /v1/models "
                    f"(HTTP {response.status_code}); set MAZE_SERVED_MODEL_NAME"
                ) from exc
        return self._model_name


def get_state(request: Request) -> GatewayState:
    state: GatewayState = request.app.state.gateway  # set by the app's lifespan; Starlette's State is untyped
    return state
