"""The client helpers: wait out a cold start, then one constrained completion and one streamed.

MAZE_ENDPOINT_URL=http://127.0.0.1:8000 MAZE_API_KEY=... python examples/client_helpers.py
"""

from __future__ import annotations

import sys

from client import MazeClient


def main() -> None:
    maze = MazeClient()  # MAZE_ENDPOINT_URL (without /v1) and MAZE_API_KEY
    maze.wait_for_ready(progress=lambda elapsed, status: print(f"waiting for the server ({elapsed:.0f} s, {status})"))

    print(maze.generate("Describe a point as JSON.", json_schema={"type": "object"}, max_tokens=64))

    stream = maze.generate("Write a function that reverses a list.", language="python", max_tokens=128, stream=True)
    for delta in stream:
        sys.stdout.write(delta)
        sys.stdout.flush()
    print(f"\n[finish_reason: {stream.finish_reason}]")


if __name__ == "__main__":
    main()
