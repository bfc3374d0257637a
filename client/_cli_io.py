"""What the CLI reads and shows besides the generated text: input files, the cold-start wait, the summary line.

Everything here writes to stderr; stdout carries only generated text (or a command's listing).
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import httpx

from ._config import ClientConfig
from ._ready import ReadyWait

NOTICE = "waiting for the server (cold start)…"


class CliError(Exception):
    """A failure the CLI reports as one line; ``exit_code`` 2 means "fix your input", 1 "the server failed"."""

    def __init__(self, message: str, exit_code: int = 2) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def one_line(message: str) -> str:
    """Collapse a multi-line message (llguidance's, a server's) into one line."""
    return " ".join(message.split())


def read_input(path: str, what: str) -> str:
    """The text of ``path`` (``-`` is stdin); an unreadable file is a ``CliError`` that names it."""
    if path == "-":
        return sys.stdin.read()
    try:
        return Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise CliError(f"cannot read {what} {path}: {reason}") from None


def read_json_schema(path: str) -> dict[str, Any]:
    text = read_input(path, "JSON schema")
    try:
        schema = json.loads(text)
    except json.JSONDecodeError as exc:
        raise CliError(f"JSON schema {path} is not valid JSON: {exc}") from None
    if not isinstance(schema, dict):
        raise CliError(f"JSON schema {path} must be a JSON object, not {type(schema).__name__}")
    return schema


def open_output(path: str) -> TextIO:
    """Open ``--output`` before anything is sent, so a bad path fails before the generation, not after."""
    try:
        return open(path, "w", encoding="utf-8")  # closed by the caller, after the stream
    except OSError as exc:
        raise CliError(f"cannot write {path}: {exc.strerror or exc}") from None


class ColdStartNotice:
    """The progress callback for the cold-start wait: one line on stderr, rewritten in place on a terminal."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.tty = stream.isatty()
        self.shown = False
        self.elapsed = 0.0

    def __call__(self, elapsed: float, status: int | None) -> None:
        self.elapsed = elapsed
        if self.tty:
            self.stream.write(f"\r{NOTICE} {elapsed:.0f} s")
        elif not self.shown:
            self.stream.write(f"{NOTICE}\n")
        self.shown = True
        self.stream.flush()

    def finish(self, ready: bool) -> None:
        """Close the notice: say how long the wait took, or end the line so an error starts on its own."""
        if not self.shown:
            return
        if ready:
            self.stream.write(("\r" if self.tty else "") + f"server ready after {self.elapsed:.0f} s\n")
        elif self.tty:
            self.stream.write("\n")
        self.stream.flush()


def wait_until_ready(config: ClientConfig, timeout: float, notice: ColdStartNotice) -> None:
    """Poll ``GET /ready`` like ``MazeClient.wait_for_ready``, but give up at once on an address nobody answers.

    A refused connection or an unknown host is never a cold start (locally the gateway answers before vLLM
    is up; Modal holds the connection open while a container starts), so waiting would only hide a typo.
    A read timeout is Modal holding the request: that one is waited out.
    """
    wait = ReadyWait(f"{config.base_url}/ready", timeout, interval=2.0, progress=notice)
    headers = {"Authorization": f"Bearer {config.api_key}"}
    ready = False
    try:
        with httpx.Client(timeout=httpx.Timeout(30.0, connect=10.0), follow_redirects=True) as http:
            wait.run(lambda: _get_ready(http, wait.url, headers, config.base_url))
            ready = True
    finally:
        notice.finish(ready)


def _get_ready(http: httpx.Client, url: str, headers: dict[str, str], base_url: str) -> httpx.Response | None:
    """One ``GET /ready``: None while Modal holds the request, ``CliError`` when nobody answers at all."""
    try:
        return http.get(url, headers=headers)
    except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
        raise CliError(f"cannot reach the server at {base_url}: {exc}", exit_code=1) from None
    except httpx.TransportError:
        return None


@dataclass
class Summary:
    """The line printed at the end of a generation: tokens, time, tokens/s, why it ended."""

    tokens: int
    seconds: float
    finish_reason: str | None

    def line(self) -> str:
        rate = self.tokens / self.seconds if self.seconds > 0 else 0.0
        return f"[{self.tokens} tokens in {self.seconds:.1f} s, {rate:.1f} tok/s, finish_reason={self.finish_reason}]"
