"""The package's face: exported names, no server-side imports, configuration and constraint checks (no server)."""

from __future__ import annotations

import subprocess
import sys

import openai
import pytest

import client
from app.ports import free_port
from client import ClientConfig, ConfigurationError, ConstraintError, MazeClient
from client._request import constraint_body


def test_exports_stay_right() -> None:
    public = {name for name in dir(client) if not name.startswith("_")} - {"maze_provider", "cli"}
    assert set(client.__all__) == public
    assert client.__all__ == sorted(client.__all__, key=lambda n: (not n.isupper(), n))


def test_importing_the_client_pulls_in_nothing_from_the_server() -> None:
    code = "import sys, client; print(sorted({m.split('.')[0] for m in sys.modules} & {'app','gateway','grammars'}))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_configuration_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MAZE_ENDPOINT_URL", "https://example.modal.run/v1/")
    monkeypatch.setenv("MAZE_API_KEY", "sk-env")
    maze = MazeClient()
    assert (maze.config.base_url, maze.config.api_key) == ("https://example.modal.run", "sk-env")
    assert str(maze.openai.base_url) == "https://example.modal.run/v1/"
    assert MazeClient("http://other:8000", "sk-arg").config.api_key == "sk-arg"


@pytest.mark.parametrize("missing", ["MAZE_ENDPOINT_URL", "MAZE_API_KEY"])
def test_missing_configuration_is_a_clear_error(monkeypatch: pytest.MonkeyPatch, missing: str) -> None:
    monkeypatch.setenv("MAZE_ENDPOINT_URL", "http://127.0.0.1:8000")
    monkeypatch.setenv("MAZE_API_KEY", "sk-env")
    monkeypatch.delenv(missing)
    with pytest.raises(ConfigurationError, match=missing):
        MazeClient()


def test_configuration_can_come_from_any_mapping() -> None:
    with pytest.raises(ConfigurationError, match="MAZE_ENDPOINT_URL"):
        ClientConfig.resolve(env={})
    assert ClientConfig.resolve(env={"MAZE_ENDPOINT_URL": "http://h:1", "MAZE_API_KEY": "k"}).base_url == "http://h:1"


@pytest.mark.parametrize(
    ("kwargs", "body"),
    [
        ({}, {}),
        ({"language": "python"}, {"language": "python"}),
        ({"grammar": "start: /a+/"}, {"structured_outputs": {"grammar": "start: /a+/"}}),
        ({"json_schema": {"type": "integer"}}, {"structured_outputs": {"json": {"type": "integer"}}}),
        ({"regex": "[0-9]+"}, {"structured_outputs": {"regex": "[0-9]+"}}),
        ({"choice": ("yes", "no")}, {"structured_outputs": {"choice": ["yes", "no"]}}),
    ],
)
def test_each_constraint_goes_in_its_field(kwargs: dict[str, object], body: dict[str, object]) -> None:
    assert constraint_body(**kwargs) == body  # type: ignore[arg-type]


def test_two_constraints_are_refused_before_any_request() -> None:
    # Nothing listens on this port: a request would surface as APIConnectionError, not ConstraintError.
    maze = MazeClient(f"http://127.0.0.1:{free_port()}", "sk-x", max_retries=0, timeout=2)
    with pytest.raises(ConstraintError, match=r"language, grammar") as raised:
        maze.generate("x", language="python", grammar="start: /a/")
    assert isinstance(raised.value, ValueError)
    with pytest.raises(ValueError, match=r"json_schema, regex"):
        maze.generate("x", json_schema={"type": "integer"}, regex="[0-9]+", model="m")
    with pytest.raises(openai.APIConnectionError):  # the same client does reach for the network otherwise
        maze.generate("x", regex="[0-9]+", model="m")
