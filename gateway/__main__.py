"""``python -m gateway --upstream URL``: the gateway alone, in front of any OpenAI-compatible server."""

from __future__ import annotations

import argparse
import sys

import uvicorn
from pydantic import ValidationError

from .app import create_app
from .settings import InsecureConfigError, Settings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m gateway", description=__doc__)
    parser.add_argument("--upstream", help="base URL of the OpenAI-compatible server (MAZE_UPSTREAM_URL)")
    parser.add_argument("--host", help="address to listen on (MAZE_HOST, default 127.0.0.1)")
    parser.add_argument("--port", type=int, help="port to listen on (MAZE_PORT, default 8000)")
    args = parser.parse_args(argv)
    overrides = {
        k: v for k, v in {"upstream_url": args.upstream, "host": args.host, "port": args.port}.items() if v is not None
    }
    try:
        settings = Settings(**overrides)
        app = create_app(settings)
    except (ValidationError, InsecureConfigError) as exc:
        print(f"gateway: {exc}", file=sys.stderr)
        return 2
    uvicorn.run(app, host=settings.host, port=settings.port, log_level="info")
    return 0


if __name__ == "__main__":
    sys.exit(main())
