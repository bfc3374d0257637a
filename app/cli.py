"""`python -m app`: run the gateway + vLLM pair locally, or build the tiny test model.

    python -m app serve [--model DIR|HF_ID] [--profile NAME] [--host H] [--port P]
                        [--upstream-port P] [--served-model-name NAME] [--log-dir DIR]
    python -m app tiny-model DIR
    python -m app demo [--max-tokens N]

Exit codes: 0 done (or stopped by a signal), 1 vLLM/gateway failure, 2 bad input (unknown profile,
missing model, port in use), printed as one line without a traceback, 130 Ctrl-C before serving.

Adding a subcommand: write `_add_demo(subparsers, settings)` that creates its parser (its defaults
from `settings`) and calls `set_defaults(run=function_taking_args_returning_exit_code)`, then list it
in SUBCOMMANDS. The environment is read once, into `AppSettings`, which commands find as `args.settings`.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import re
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import NoReturn

from app.errors import AppError, ConfigError, ModelNotFoundError
from app.ports import ensure_port_free
from app.profiles import Profile, get_profile
from app.settings import AppSettings

logger = logging.getLogger("app")

#: Name clients use for the locally built tiny model (its path would be a clumsy model name).
TINY_MODEL_SERVED_NAME = "tiny-qwen2"

#: "org/name" (HF id); anything else that does not exist on disk is a typo, not a model.
_HF_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


class _Parser(argparse.ArgumentParser):
    """argparse whose errors are one line and exit 2, like every other input error.

    The default also prints the usage block, which buries the actual complaint.
    """

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def _add_serve(subparsers: argparse._SubParsersAction[_Parser], settings: AppSettings) -> None:
    p = subparsers.add_parser("serve", help="run the gateway with a supervised vLLM behind it")
    p.add_argument(
        "--model",
        help="model directory or HF id (default: the profile's model, "
        "or for cpu-tiny the tiny model, built on first use)",
    )
    p.add_argument(
        "--profile",
        default=settings.profile,
        help="hardware/model profile (default: $MAZE_PROFILE or %(default)s)",
    )
    p.add_argument("--host", default="127.0.0.1", help="gateway address (default: %(default)s)")
    p.add_argument("--port", type=int, default=8000, help="gateway port (default: %(default)s)")
    p.add_argument(
        "--upstream-port", type=int, default=8001, help="vLLM port, always on 127.0.0.1 (default: %(default)s)"
    )
    p.add_argument(
        "--served-model-name",
        default=settings.served_model_name,
        help="model name clients send (default: $MAZE_SERVED_MODEL_NAME, else the HF id, "
        f"or {TINY_MODEL_SERVED_NAME!r} for the tiny model)",
    )
    p.add_argument(
        "--log-dir",
        type=Path,
        default=settings.log_dir,
        help="write vLLM's output to DIR/vllm.log instead of the terminal",
    )
    p.add_argument(
        "--stop-grace",
        type=float,
        default=10.0,
        metavar="SECONDS",
        help="on SIGTERM, how long running requests may finish (streams still open a second before "
        "the end get an error event), and how long vLLM gets to exit (default: %(default)s)",
    )
    p.set_defaults(run=cmd_serve)


def _add_tiny_model(subparsers: argparse._SubParsersAction[_Parser], settings: AppSettings) -> None:
    p = subparsers.add_parser("tiny-model", help="build the tiny random Qwen2 model into DIR")
    p.add_argument("dir", type=Path, help="output directory (reused if already complete)")
    p.set_defaults(run=cmd_tiny_model)


def _add_demo(subparsers: argparse._SubParsersAction[_Parser], settings: AppSettings) -> None:
    from app.demo import add_parser

    add_parser(subparsers)


SUBCOMMANDS: tuple[Callable[[argparse._SubParsersAction[_Parser], AppSettings], None], ...] = (
    _add_serve,
    _add_tiny_model,
    _add_demo,
)


def build_parser(settings: AppSettings | None = None) -> argparse.ArgumentParser:
    """The `python -m app` parser with every subcommand in SUBCOMMANDS; `settings` (else the environment,
    read now) gives the defaults, and every command finds it as `args.settings`."""
    settings = settings or AppSettings()
    parser = _Parser(prog="python -m app", description="maze-inference: gateway + vLLM")
    parser.set_defaults(settings=settings)
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=_Parser)
    for add in SUBCOMMANDS:
        add(subparsers, settings)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit code. Translates AppError into one line on stderr."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s", datefmt="%H:%M:%S")
    for noisy in ("httpx", "httpx2"):  # one INFO line per request is noise here
        logging.getLogger(noisy).setLevel(logging.WARNING)
    try:
        return int(args.run(args))
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except AppError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:  # only reachable before serve() installs its signal handlers
        return 130


def cmd_serve(args: argparse.Namespace) -> int:
    """Validate everything cheap first (profile, ports, model), then build the model, then serve."""
    from app.supervisor import ServeConfig, serve  # uvicorn import only for this subcommand

    profile = get_profile(args.profile)
    ensure_port_free(args.host, args.port)
    ensure_port_free("127.0.0.1", args.upstream_port)
    model, default_name = resolve_model(args.model, profile, args.settings.tiny_model_dir)
    config = ServeConfig(
        profile=profile,
        model=model,
        host=args.host,
        port=args.port,
        upstream_port=args.upstream_port,
        served_model_name=args.served_model_name or default_name,
        log_dir=args.log_dir,
        stop_grace_s=args.stop_grace,
    )
    return asyncio.run(serve(config))


def cmd_tiny_model(args: argparse.Namespace) -> int:
    """Build (or reuse) the tiny model and print its directory."""
    import time

    from app.tiny_model import build_tiny_model

    started = time.monotonic()
    out = build_tiny_model(args.dir)
    logger.info("tiny model ready in %.1f s", time.monotonic() - started)
    print(out)
    return 0


def resolve_model(model: str | None, profile: Profile, tiny_model_dir: Path | None = None) -> tuple[str, str | None]:
    """Turn --model (or its absence) into (what vLLM loads, default served name).

    Without --model: the profile's HF id, else (profiles with no model, i.e. cpu-tiny) the tiny
    model in `tiny_model_dir` (default: the settings' cache), built on first use. With --model: an
    existing directory holding a config.json, or something shaped like an HF id; anything else is a
    typo and fails now rather than after vLLM has spent 20 s importing.
    """
    if model is None:
        if profile.model is not None:
            return profile.model, None
        from app.tiny_model import build_tiny_model, default_tiny_model_dir, is_complete

        target = tiny_model_dir or default_tiny_model_dir()
        if not is_complete(target):
            logger.info("building the tiny model in %s (first run only)", target)
        return str(build_tiny_model(target)), TINY_MODEL_SERVED_NAME
    path = Path(model).expanduser()
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise ModelNotFoundError(f"model directory {path} has no config.json")
        return str(path.resolve()), None
    if path.exists() or not _HF_ID.match(model):
        raise ModelNotFoundError(f"model {model!r} is not a directory and not an HF id (org/name)")
    return model, None
