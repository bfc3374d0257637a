"""The scripts in examples/ run against the real stack, configured only by environment variables."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from ..conftest import Stack

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


@pytest.mark.parametrize("script", ["client_helpers.py", "maze_provider.py"])
def test_example_runs(stack: Stack, script: str) -> None:
    env = {**os.environ, "MAZE_ENDPOINT_URL": stack.base_url, "MAZE_API_KEY": stack.api_key}
    done = subprocess.run(
        [sys.executable, str(EXAMPLES / script)], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    if script == "maze_provider.py":
        batch = done.stdout.splitlines()[-8:]  # the batch's answers, one line each, in request order
        assert [line.split(":")[0] for line in batch] == [f"item{i}" for i in range(8)], done.stdout
