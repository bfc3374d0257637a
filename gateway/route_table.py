"""Every path the gateway serves, named once.

The routes are declared with these names, and everything that treats routes differently reads its set
here: the admission limits and the keep-alive (generation routes), the metrics (named routes), the
OpenAPI document (public and upstream routes), the error bodies (Maze's routes) and the fallback
(chat completions). ``tests/gateway/test_route_table.py`` checks the table against the app's routes.
"""

from __future__ import annotations

V1 = "/v1"

CHAT_COMPLETIONS = "/v1/chat/completions"
COMPLETIONS = "/v1/completions"
MODELS = "/v1/models"
GENERATE = "/generate"
GENERATE_BATCH = "/generate/batch"
HEALTH = "/health"
READY = "/ready"
METRICS = "/metrics"
GRAMMARS = "/grammars"
GRAMMAR = "/grammars/{name}"

#: Maze's routes, each served at its own path and again under ``/v1``.
MAZE_ROUTES = (GENERATE, GENERATE_BATCH)
MAZE_PATHS = frozenset(prefix + route for route in MAZE_ROUTES for prefix in ("", V1))

#: The OpenAI routes that generate.
OPENAI_GENERATION_PATHS = frozenset({CHAT_COMPLETIONS, COMPLETIONS})

#: Routes that generate: each reaches the model server and takes a concurrency slot.
GENERATION_PATHS = OPENAI_GENERATION_PATHS | MAZE_PATHS

#: Routes that ask the model server, so may answer its failures (502, 503, 504).
UPSTREAM_PATHS = GENERATION_PATHS | {MODELS, READY}

#: Routes open without an API key.
PUBLIC_PATHS = frozenset({HEALTH})

#: Routes the metrics report by their own path (the grammar pages as :data:`GRAMMAR`).
NAMED_PATHS = UPSTREAM_PATHS | PUBLIC_PATHS | {METRICS, GRAMMARS}


def is_maze_path(path: str) -> bool:
    """Whether ``path`` is one of Maze's routes, whose every answer (errors included) carries ``success``."""
    return path.rstrip("/").endswith(MAZE_ROUTES)
