"""The client's own errors. Errors the server sends back stay the openai SDK's (``openai.APIError`` and kin).

    MazeClientError
     ├── ConfigurationError   no endpoint/key, or an endpoint that is not a Maze gateway
     ├── ConstraintError      more than one constraint in one call (also a ``ValueError``)
     └── NotReadyError        ``wait_for_ready`` ran out of time (also a ``TimeoutError``)

A key the gateway refuses is the SDK's ``openai.AuthenticationError``, from ``generate`` and from
``wait_for_ready`` alike, so callers catch one type for it.
"""

from __future__ import annotations


class MazeClientError(Exception):
    """Base class of the errors raised by the client helpers themselves."""


class ConfigurationError(MazeClientError):
    """The client cannot be built or pointed at a gateway (missing URL or key, wrong URL)."""


class ConstraintError(MazeClientError, ValueError):
    """A call named more than one constraint; raised before any request is sent."""


class NotReadyError(MazeClientError, TimeoutError):
    """The gateway did not report ready within the timeout."""

    def __init__(self, message: str, last_status: int | None) -> None:
        super().__init__(message)
        #: The last HTTP status of ``GET /ready``, or None if the gateway was unreachable.
        self.last_status = last_status
