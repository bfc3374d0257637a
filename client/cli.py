"""``maze-inference``: grammar-constrained generation from the terminal, against a running gateway.

    maze-inference generate PROMPT [--language L | --grammar FILE | --json-schema FILE]
                           [--max-tokens N] [--temperature T] [--seed N] [--model M]
                           [--no-stream] [--output FILE] [--wait SECONDS]
    maze-inference grammars [--local]
    maze-inference check FILE (--language L | --grammar FILE)

Where the gateway is: ``--endpoint`` / ``--api-key``, else ``MAZE_ENDPOINT_URL`` / ``MAZE_API_KEY``.
``generate`` streams the text to stdout as it arrives; everything else (the cold-start notice, the
token count and tokens/s at the end, errors) goes to stderr, so ``> file`` and pipes get only the code.
PROMPT and FILE may be ``-`` for stdin.

Exit codes: 0 done (``check``: the file is accepted); 1 the server or network failed, or ``check``
rejected the file; 2 input to fix (flags, files, grammar, language, key, configuration), printed as one
line without a traceback; 130 interrupted.

Only the ``_cli_*`` modules touch ``grammars/`` (the library shipped with the package, for local
checks); ``import client`` stays free of it, and nothing here imports the server (``app``, ``gateway``).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from typing import NoReturn

import openai

from ._cli_commands import cmd_check, cmd_generate, cmd_grammars
from ._cli_io import CliError, one_line
from ._config import API_KEY_ENV, ENDPOINT_ENV, ClientSettings
from ._exceptions import ConfigurationError, ConstraintError, NotReadyError

PROG = "maze-inference"


class _Parser(argparse.ArgumentParser):
    """argparse whose errors are one line and exit 2 (the default prints the whole usage block first)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def _add_connection(parser: argparse.ArgumentParser, settings: ClientSettings) -> None:
    parser.add_argument(
        "--endpoint", default=settings.endpoint_url, help=f"gateway root URL, without /v1 (default: ${ENDPOINT_ENV})"
    )
    parser.add_argument("--api-key", default=settings.api_key, help=f"API key (default: ${API_KEY_ENV})")


def _add_generate(subparsers: argparse._SubParsersAction[_Parser], settings: ClientSettings) -> None:
    p = subparsers.add_parser("generate", help="generate text under a grammar, streamed to stdout")
    p.add_argument("prompt", help="what to ask for ('-' reads it from stdin)")
    constraint = p.add_mutually_exclusive_group()
    constraint.add_argument("--language", "-l", help="a grammar of the server's library (see `grammars`)")
    constraint.add_argument("--grammar", "-g", metavar="FILE", help="a Lark grammar file (llguidance dialect)")
    constraint.add_argument("--json-schema", "-j", metavar="FILE", help="a JSON Schema file")
    p.add_argument("--max-tokens", type=int, default=512, help="at most this many tokens (default: %(default)s)")
    p.add_argument("--temperature", type=float, help="sampling temperature (default: the server's)")
    p.add_argument("--seed", type=int, help="sampling seed, for repeatable outputs")
    p.add_argument("--model", help="served model name (default: the first of the server's /v1/models)")
    p.add_argument("--no-stream", dest="stream", action="store_false", help="print the text once it is complete")
    p.add_argument("--output", "-o", metavar="FILE", help="write the text to FILE instead of stdout")
    p.add_argument(
        "--wait",
        type=float,
        default=900.0,
        metavar="SECONDS",
        help="wait this long for a cold start (/ready answering 503) before giving up (default: %(default).0f)",
    )
    _add_connection(p, settings)
    p.set_defaults(run=cmd_generate)


def _add_grammars(subparsers: argparse._SubParsersAction[_Parser], settings: ClientSettings) -> None:
    p = subparsers.add_parser("grammars", help="list the grammar library (the server's, or --local)")
    p.add_argument(
        "--local",
        action="store_true",
        help="list the library shipped with this package (what `check` uses) instead of asking the server",
    )
    _add_connection(p, settings)
    p.set_defaults(run=cmd_grammars)


def _add_check(subparsers: argparse._SubParsersAction[_Parser], settings: ClientSettings) -> None:
    p = subparsers.add_parser("check", help="check a file against a grammar locally, with llguidance")
    p.add_argument("file", help="the file to check ('-' reads stdin)")
    grammar = p.add_mutually_exclusive_group(required=True)
    grammar.add_argument("--language", "-l", help="a grammar of the local library (see `grammars --local`)")
    grammar.add_argument("--grammar", "-g", metavar="FILE", help="a Lark grammar file (llguidance dialect)")
    p.set_defaults(run=cmd_check)


SUBCOMMANDS: tuple[Callable[[argparse._SubParsersAction[_Parser], ClientSettings], None], ...] = (
    _add_generate,
    _add_grammars,
    _add_check,
)


def build_parser(settings: ClientSettings | None = None) -> argparse.ArgumentParser:
    """The CLI's parser; ``settings`` (else the environment, read now) gives the connection flags' defaults."""
    settings = settings or ClientSettings.from_env()
    parser = _Parser(prog=PROG, description="Grammar-constrained code generation from a maze-inference gateway.")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=_Parser)
    for add in SUBCOMMANDS:
        add(subparsers, settings)
    return parser


def _api_status_message(exc: openai.APIStatusError) -> str:
    """The gateway's own message (its OpenAI-shaped body), not the SDK's ``Error code: 400 - {...}``."""
    body = exc.body
    message = body.get("message") if isinstance(body, dict) else None
    return f"the server answered {exc.status_code}: {message or exc.message}"


def _failure(exc: BaseException) -> tuple[str, int]:
    """One line and an exit code for every failure a user can cause or meet; the single translation point."""
    if isinstance(exc, CliError):
        return str(exc), exc.exit_code
    if isinstance(exc, ConfigurationError | ConstraintError):
        return str(exc), 2
    if isinstance(exc, NotReadyError):
        return f"the server did not become ready: {exc}", 1
    if isinstance(exc, openai.AuthenticationError):
        return f"the server refused the API key (401): check --api-key or ${API_KEY_ENV}", 2
    if isinstance(exc, openai.APIStatusError):
        return _api_status_message(exc), 2 if exc.status_code < 500 else 1
    if isinstance(exc, openai.APITimeoutError):
        return "the server did not answer in time", 1
    if isinstance(exc, openai.APIConnectionError):
        return f"cannot reach the server: {exc.__cause__ or exc}", 1
    if isinstance(exc, openai.APIError):  # an error event inside a stream (e.g. the model server died)
        return f"the generation failed on the server: {exc.message}", 1
    raise exc


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``maze-inference`` console script; returns the exit code."""
    args = build_parser().parse_args(argv)
    try:
        return int(args.run(args))
    except KeyboardInterrupt:
        print(file=sys.stderr)
        return 130
    except BrokenPipeError:  # `maze-inference generate ... | head`: the reader has what it wanted
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error when exit flushes
        return 0
    except Exception as exc:
        message, code = _failure(exc)
        print(f"{PROG}: error: {one_line(message)}", file=sys.stderr)
        return code


if __name__ == "__main__":
    sys.exit(main())
