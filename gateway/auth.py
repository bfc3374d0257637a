"""Bearer-key authentication.

Keys come from ``MAZE_API_KEYS`` (comma-separated, so a new key can be added before the old one is
removed). Every configured key is compared with :func:`hmac.compare_digest` and the loop never stops
early, so timing reveals neither which key nor how much of one matched. Keys are never logged: the
failure message says only what is wrong with the request.
"""

from __future__ import annotations

import hmac

from fastapi import Request

from .errors import AuthenticationError
from .state import GatewayState, get_state


def key_matches(presented: str, keys: list[str]) -> bool:
    presented_bytes = presented.encode()
    matched = False
    for key in keys:
        matched |= hmac.compare_digest(presented_bytes, key.encode())
    return matched


def presented_key(request: Request) -> str | None:
    header = request.headers.get("authorization")
    if header is None:
        return None
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


async def require_api_key(request: Request) -> None:
    """FastAPI dependency guarding every route except ``/health``."""
    state: GatewayState = get_state(request)
    keys = state.settings.api_keys
    if not keys:
        return  # loopback-only deployment; Settings.check_exposure enforced that at startup
    token = presented_key(request)
    if token is None:
        raise AuthenticationError(
            "missing API key: send the header 'Authorization: Bearer <key>'",
            headers={"WWW-Authenticate": "Bearer"},
        )
    if not key_matches(token, keys):
        raise AuthenticationError("invalid API key", headers={"WWW-Authenticate": "Bearer"})
