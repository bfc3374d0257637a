"""The CLI's three commands. Each reads its arguments, raises ``CliError`` (or lets the SDK's errors through)
for ``cli.main`` to turn into one line, and returns an exit code.

Cheap checks come first, before any network: files are read, a grammar is compiled with llguidance, the
output file is opened. Then the cold start is waited out, then the generation is sent.
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any, TextIO

import httpx

from ._cli_io import (
    CliError,
    ColdStartNotice,
    Summary,
    one_line,
    open_output,
    read_input,
    read_json_schema,
    wait_until_ready,
)
from ._client import MazeClient
from ._config import API_KEY_ENV, ENDPOINT_ENV, ClientConfig
from ._request import chat_request, completion_text, constraint_body
from ._stream import TextStream


def resolve_config(args: argparse.Namespace, hint: str = "") -> ClientConfig:
    """``--endpoint``/``--api-key`` (their defaults come from the environment, read once by ``cli.build_parser``);
    the messages name the flags, not Python arguments."""
    url, key = args.endpoint, args.api_key
    if not url:
        raise CliError(f"no server: pass --endpoint URL or set {ENDPOINT_ENV}{hint}")
    if not key:
        raise CliError(f"no API key: pass --api-key KEY or set {API_KEY_ENV} (a keyless local gateway takes any)")
    return ClientConfig.resolve(url, key)


def load_grammar_file(path: str) -> str:
    """A Lark grammar file, compiled locally with llguidance so a broken one never reaches the server."""
    from grammars.validation import validate  # llguidance: only for the commands that need it

    text = read_input(path, "grammar")
    error = validate(text)
    if error:
        raise CliError(f"grammar {path} is invalid: {error}")
    return text


def _constraint(args: argparse.Namespace) -> dict[str, Any]:
    """``constraint_body`` keywords for the one constraint the flags name (argparse keeps them exclusive)."""
    if args.grammar is not None:
        return {"grammar": load_grammar_file(args.grammar)}
    if args.json_schema is not None:
        return {"json_schema": read_json_schema(args.json_schema)}
    if args.language is not None:
        return {"language": args.language}  # the server's library decides; an unknown name is its 400
    return {}


def cmd_generate(args: argparse.Namespace) -> int:
    if args.max_tokens < 1:
        raise CliError(f"--max-tokens must be at least 1, not {args.max_tokens}")
    if args.wait < 0:
        raise CliError(f"--wait must be 0 or more seconds, not {args.wait:g}")
    prompt = read_input("-", "prompt") if args.prompt == "-" else args.prompt
    extra_body = constraint_body(**_constraint(args))
    config = resolve_config(args)
    out = open_output(args.output) if args.output else sys.stdout
    try:
        wait_until_ready(config, args.wait, ColdStartNotice(sys.stderr))
        with MazeClient(config.base_url, config.api_key, model=args.model) as maze:
            request = chat_request(
                prompt, model=maze.resolve_model(), extra_body=extra_body, max_tokens=args.max_tokens,
                temperature=args.temperature, seed=args.seed, stream=args.stream,
            )  # fmt: skip
            summary, last = _stream(maze, request, out) if args.stream else _complete(maze, request, out)
    finally:
        if out is not sys.stdout:
            out.close()
    if out is sys.stdout and out.isatty() and not last.endswith("\n"):
        out.write("\n")  # end the line for the shell prompt; pipes and files get the exact text
    print(summary.line(), file=sys.stderr)
    return 0


def _stream(maze: MazeClient, request: dict[str, Any], out: TextIO) -> tuple[Summary, str]:
    """Write each delta as it arrives; the token count is the server's usage chunk (else the deltas)."""
    started = time.monotonic()
    deltas, last = 0, ""
    with TextStream(maze.openai.chat.completions.create(**request)) as stream:
        for delta in stream:
            out.write(delta)
            out.flush()
            deltas, last = deltas + 1, delta
    tokens = stream.usage.completion_tokens if stream.usage is not None else deltas
    return Summary(tokens, time.monotonic() - started, stream.finish_reason), last


def _complete(maze: MazeClient, request: dict[str, Any], out: TextIO) -> tuple[Summary, str]:
    started = time.monotonic()
    completion = maze.openai.chat.completions.create(**request)
    text = completion_text(completion)
    out.write(text)
    out.flush()
    tokens = completion.usage.completion_tokens if completion.usage is not None else 0
    return Summary(tokens, time.monotonic() - started, completion.choices[0].finish_reason), text


def cmd_grammars(args: argparse.Namespace) -> int:
    """The server's ``GET /grammars`` (what ``--language`` accepts there), or with ``--local`` this package's."""
    if args.local:
        import grammars

        rows = [(info.name, info.description) for info in grammars.list_grammars()]
    else:
        rows = [(item["name"], item.get("description", "")) for item in _server_grammars(args)]
    width = max((len(name) for name, _ in rows), default=0)
    for name, description in rows:
        print(f"{name:<{width}}  {description}".rstrip())
    return 0


def _server_grammars(args: argparse.Namespace) -> list[dict[str, Any]]:
    config = resolve_config(args, hint=" (or use --local for the library shipped with this package)")
    url = f"{config.base_url}/grammars"
    try:
        response = httpx.get(url, headers={"Authorization": f"Bearer {config.api_key}"}, timeout=30.0)
    except httpx.TransportError as exc:
        raise CliError(f"cannot reach the server at {config.base_url}: {exc}", exit_code=1) from None
    if response.status_code == 401:
        raise CliError(f"the server refused the API key (401): check --api-key or ${API_KEY_ENV}")
    if response.status_code != 200:
        raise CliError(f"GET {url} answered {response.status_code}: is this the gateway's root URL?")
    return list(response.json()["data"])


def cmd_check(args: argparse.Namespace) -> int:
    """Exit 0 when the whole file is a sentence of the grammar, 1 (with where it fails) when not."""
    import grammars
    from grammars.validation import GrammarCompileError, check_text

    text = read_input(args.file, "file")
    if args.language is not None:
        try:
            grammar, label = grammars.load(args.language), args.language
        except grammars.UnknownGrammarError as exc:
            raise CliError(str(exc)) from None
    else:
        grammar, label = load_grammar_file(args.grammar), args.grammar
    try:
        verdict = check_text(grammar, text)
    except GrammarCompileError as exc:
        raise CliError(f"grammar {label} does not compile: {exc}") from None
    name = "<stdin>" if args.file == "-" else args.file
    if verdict.accepted:
        print(f"{name}: accepted by {label}")
        return 0
    print(f"{name}:{verdict.where()}: rejected by {label}: {one_line(verdict.message)}")
    return 1
