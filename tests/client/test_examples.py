"""The scripts in examples/ run against the real stack, configured only by environment variables.

Each one's first constrained output is checked against its grammar; every file in examples/ must be run here.
"""

from __future__ import annotations

import ast
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import grammars

from ..conftest import Stack
from ..e2e.grammar_match import assert_obeys
from .conftest import SUM

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
PYTHON_EXAMPLES = [
    "client_helpers.py",
    "maze_provider.py",
    "openai_sdk.py",
    "langchain_example.py",
    "litellm_example.py",
]


def test_every_example_is_covered_and_compiles() -> None:
    assert sorted(path.name for path in EXAMPLES.iterdir() if path.suffix in {".py", ".sh"}) == sorted(
        [*PYTHON_EXAMPLES, "curl.sh"]
    )
    for name in PYTHON_EXAMPLES:
        ast.parse((EXAMPLES / name).read_text(), filename=name)
    subprocess.run(["bash", "-n", str(EXAMPLES / "curl.sh")], check=True)


def run_example(stack: Stack, *argv: str) -> list[str]:
    env = {**os.environ, "MAZE_ENDPOINT_URL": stack.base_url, "MAZE_API_KEY": stack.api_key}
    done = subprocess.run(list(argv), env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return done.stdout.splitlines()


@pytest.mark.parametrize("script", PYTHON_EXAMPLES)
def test_example_runs(stack: Stack, script: str) -> None:
    lines = run_example(stack, sys.executable, str(EXAMPLES / script))
    if script == "maze_provider.py":
        batch = lines[-8:]  # the batch's answers, one line each, in request order
        assert [line.split(":")[0] for line in batch] == [f"item{i}" for i in range(8)], lines
    elif script == "openai_sdk.py":
        assert_obeys(SUM, lines[0], "stop")
        assert isinstance(json.loads(lines[-1])["ok"], bool)
    elif script == "langchain_example.py":
        text, finish = lines[0].rsplit(" ", 1)
        assert_obeys(SUM, text, finish)
        assert ast.literal_eval(lines[-1])["color"] in {"red", "green", "blue"}
    elif script == "litellm_example.py":
        assert_obeys(SUM, lines[0], "stop")


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
def test_curl_example_runs(stack: Stack) -> None:
    lines = run_example(stack, "bash", str(EXAMPLES / "curl.sh"))
    choice = json.loads(lines[0])["choices"][0]
    assert_obeys(SUM, choice["message"]["content"], choice["finish_reason"])
    maze = json.loads(lines[-1])
    assert maze["success"] is True and maze["metadata"]["language"] == "python"
    assert_obeys(grammars.load("python"), maze["code"], maze["metadata"]["finish_reason"])
