"""The route table names exactly the routes the app serves, with the right sets."""

from __future__ import annotations

from fastapi.routing import APIRoute

from gateway import Settings, create_app
from gateway.auth import require_api_key
from gateway.route_table import (
    GENERATION_PATHS,
    GRAMMAR,
    MAZE_PATHS,
    NAMED_PATHS,
    OPENAI_GENERATION_PATHS,
    PUBLIC_PATHS,
    is_maze_path,
)


def _routes() -> list[APIRoute]:
    app = create_app(Settings(upstream_url="http://upstream.test"))
    return [route for route in app.routes if isinstance(route, APIRoute)]


def test_every_served_path_is_in_the_table() -> None:
    assert {route.path for route in _routes()} == NAMED_PATHS | {GRAMMAR}


def test_the_generation_routes_are_the_post_routes() -> None:
    assert {route.path for route in _routes() if "POST" in route.methods} == GENERATION_PATHS


def test_the_public_routes_need_no_key() -> None:
    routes = _routes()
    guarded = {route.path for route in routes if any(d.call is require_api_key for d in route.dependant.dependencies)}
    assert {route.path for route in routes} - guarded == PUBLIC_PATHS


def test_maze_paths_are_told_apart() -> None:
    assert all(is_maze_path(path) and is_maze_path(path + "/") for path in MAZE_PATHS)
    assert not any(is_maze_path(path) for path in OPENAI_GENERATION_PATHS | PUBLIC_PATHS)
