"""``maze-inference`` as users run it: a subprocess against the real stack, every output checked against its grammar.

Bad input of every kind must end in a non-zero exit and exactly one readable line on stderr, never a traceback.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib.metadata import entry_points
from pathlib import Path

import httpx
import pytest

import grammars
from app.ports import free_port
from client import cli
from client._cli_io import NOTICE

from ..conftest import Stack
from ..e2e.grammar_match import ARITH, assert_obeys, json_schema_grammar
from .conftest import POINT_SCHEMA, SUM

CLI = [sys.executable, "-m", "client"]
SUMMARY = re.compile(r"^\[(\d+) tokens in [\d.]+ s, [\d.]+ tok/s, finish_reason=(\w+)\]$")
#: No sentence shorter than 400 letters: a generation of 60 tokens can only end by max_tokens.
LONG = "start: /[a-z]{400}/\n"


def run_cli(*args: str, env: dict[str, str] | None = None, stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([*CLI, *args], env=env, input=stdin, capture_output=True, text=True, timeout=300)


def summary(stderr: str) -> tuple[int, str]:
    """(tokens, finish_reason) from the last stderr line."""
    match = SUMMARY.match(stderr.strip().splitlines()[-1])
    assert match, stderr
    return int(match.group(1)), match.group(2)


@pytest.fixture(scope="module")
def env(stack: Stack) -> dict[str, str]:
    return {**os.environ, "MAZE_ENDPOINT_URL": stack.base_url, "MAZE_API_KEY": stack.api_key}


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("cli")
    (folder / "arith.lark").write_text(ARITH)
    (folder / "sum.lark").write_text(SUM)
    (folder / "long.lark").write_text(LONG)
    (folder / "broken.lark").write_text("start: undefined_rule\n")
    (folder / "point.json").write_text(json.dumps(POINT_SCHEMA))
    (folder / "not-json.json").write_text('{"type": ')
    (folder / "good.py").write_text("def add(a, b):\n    return a + b\n")
    (folder / "bad.py").write_text("def add(a, b):\n  return a + b\n")  # two-space indent: not this grammar
    return folder


def test_console_scripts_point_at_the_client_and_the_server() -> None:
    scripts = {ep.name: ep.value for ep in entry_points(group="console_scripts") if ep.name.startswith("maze-")}
    assert scripts == {"maze-inference": "client.cli:main", "maze-inference-server": "app.cli:main"}


def test_the_cli_imports_nothing_from_the_server() -> None:
    code = "import sys, client.cli; print(sorted({m.split('.')[0] for m in sys.modules} & {'app', 'gateway'}))"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout == "[]\n"


def test_generate_streams_tokens_as_they_arrive(env: dict[str, str], files: Path) -> None:
    argv = [*CLI, "generate", "Letters.", "--grammar", str(files / "long.lark"), "--max-tokens", "60", "--seed", "1"]
    process = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert process.stdout is not None
    first = os.read(process.stdout.fileno(), 65536)  # returns with the first delta the CLI flushes
    still_running = process.poll() is None
    rest, err = process.communicate(timeout=300)
    assert process.returncode == 0, err
    assert first and still_running, "the first text arrived only after the generation had finished"
    text = (first + rest).decode()
    tokens, finish = summary(err.decode())
    assert (tokens, finish) == (60, "length")
    assert_obeys(LONG, text, finish)


def test_generate_with_a_grammar_file(env: dict[str, str], files: Path) -> None:
    done = run_cli("generate", "A sum.", "--grammar", str(files / "sum.lark"), "--max-tokens", "32", env=env)
    assert done.returncode == 0, done.stderr
    tokens, finish = summary(done.stderr)
    assert finish == "stop" and 0 < tokens <= 32  # SUM always ends within 32 tokens
    assert_obeys(SUM, done.stdout, finish)


def test_generate_with_a_language_to_a_file_without_streaming(env: dict[str, str], files: Path, tmp_path: Path) -> None:
    out = tmp_path / "out.py"
    done = run_cli(
        "generate", "Reverse a list.", "--language", "python", "--no-stream", "--max-tokens", "24",
        "--temperature", "0.8", "--seed", "3", "--output", str(out), env=env,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout == ""  # the text went to the file
    tokens, finish = summary(done.stderr)
    assert 0 < tokens <= 24
    assert_obeys(grammars.load("python"), out.read_text(), finish)


def test_generate_with_a_json_schema_and_the_prompt_on_stdin(env: dict[str, str], files: Path) -> None:
    done = run_cli("generate", "-", "-j", str(files / "point.json"), "--max-tokens", "32", env=env, stdin="A point.")
    assert done.returncode == 0, done.stderr
    _, finish = summary(done.stderr)
    assert_obeys(json_schema_grammar(POINT_SCHEMA), done.stdout, finish)


def test_flags_override_the_environment(stack: Stack, files: Path) -> None:
    bare = {k: v for k, v in os.environ.items() if k not in {"MAZE_ENDPOINT_URL", "MAZE_API_KEY"}}
    done = run_cli(
        "generate", "x", "-g", str(files / "sum.lark"), "--max-tokens", "32",
        "--endpoint", f"{stack.base_url}/v1", "--api-key", stack.api_key, env=bare,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert_obeys(SUM, done.stdout, summary(done.stderr)[1])


#: (argv, environment changes (None removes), exit code, a fragment of the one stderr line); "{files}" is the
#: folder of the ``files`` fixture and "{nobody}" a local URL where nothing listens.
BAD_INPUTS = [
    pytest.param(["generate", "x", "-l", "cobol"], {}, 2, "unknown language 'cobol'", id="unknown-language"),
    pytest.param(["generate", "x", "-g", "{files}/missing.lark"], {}, 2, "cannot read grammar", id="no-grammar-file"),
    pytest.param(["generate", "x", "-g", "{files}/broken.lark"], {}, 2, "broken.lark is invalid: ", id="bad-grammar"),
    pytest.param(["generate", "x", "-j", "{files}/not-json.json"], {}, 2, "is not valid JSON", id="bad-schema-file"),
    pytest.param(["generate", "x"], {"MAZE_API_KEY": "sk-wrong"}, 2, "refused the API key (401)", id="wrong-key-env"),
    pytest.param(["generate", "x", "--api-key", "sk-no"], {}, 2, "refused the API key (401)", id="wrong-key-flag"),
    pytest.param(["generate", "x", "--endpoint", "{nobody}"], {}, 1, "cannot reach the server at", id="unreachable"),
    pytest.param(
        ["generate", "x", "-l", "python", "-g", "{files}/sum.lark"], {}, 2, "not allowed with", id="two-constraints"
    ),
    pytest.param(["generate", "x", "--max-tokens", "many"], {}, 2, "invalid int value: 'many'", id="bad-int"),
    pytest.param(["generate", "x", "--max-tokens", "0"], {}, 2, "--max-tokens must be at least 1", id="zero-tokens"),
    pytest.param(["generate", "x", "-o", "{files}/no-dir/out"], {}, 2, "cannot write", id="unwritable-output"),
    pytest.param(["generate", "x"], {"MAZE_ENDPOINT_URL": None}, 2, "pass --endpoint URL or set", id="no-endpoint"),
    pytest.param(["generate", "x"], {"MAZE_API_KEY": None}, 2, "pass --api-key KEY or set", id="no-key"),
    pytest.param(["grammars"], {"MAZE_API_KEY": "sk-wrong"}, 2, "refused the API key (401)", id="grammars-wrong-key"),
    pytest.param(["check", "{files}/good.py", "-l", "cobol"], {}, 2, "unknown grammar 'cobol'", id="check-language"),
    pytest.param(["check", "{files}/missing.py", "-l", "python"], {}, 2, "cannot read file", id="check-no-file"),
    pytest.param(["check", "{files}/good.py"], {}, 2, "--language/-l --grammar/-g is required", id="check-no-grammar"),
    pytest.param(["frobnicate"], {}, 2, "invalid choice: 'frobnicate'", id="unknown-command"),
]


def _argv_env(
    argv: list[str], changes: dict[str, str | None], env: dict[str, str], files: Path
) -> tuple[list[str], dict[str, str]]:
    nobody = f"http://127.0.0.1:{free_port()}"
    merged = {**env, **changes}
    return [arg.format(files=files, nobody=nobody) for arg in argv], {k: v for k, v in merged.items() if v is not None}


def _assert_one_line(code: int, stdout: str, stderr: str, expected_code: int, fragment: str) -> None:
    assert code == expected_code, (code, stderr)
    assert stdout == ""
    lines = stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("maze-inference"), stderr
    assert fragment in lines[0], lines[0]
    assert "Traceback" not in stderr


@pytest.mark.parametrize(("argv", "changes", "code", "fragment"), BAD_INPUTS)
def test_each_bad_input_is_one_line_and_a_non_zero_exit(
    argv: list[str],
    changes: dict[str, str | None],
    code: int,
    fragment: str,
    env: dict[str, str],
    files: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """In-process (``cli.main``), so eighteen cases cost no interpreter start-ups; an escaping exception fails."""
    args, run_env = _argv_env(argv, changes, env, files)
    for name in ("MAZE_ENDPOINT_URL", "MAZE_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    for name, value in run_env.items():
        if name.startswith("MAZE_"):
            monkeypatch.setenv(name, value)
    try:
        exit_code = cli.main(args)
    except SystemExit as exc:  # argparse's own exit, with its one line already written
        exit_code = int(exc.code or 0)
    captured = capsys.readouterr()
    _assert_one_line(exit_code, captured.out, captured.err, code, fragment)


@pytest.mark.parametrize("case", ["unknown-language", "unreachable", "bad-int", "no-key"])
def test_bad_input_from_a_real_process(case: str, env: dict[str, str], files: Path) -> None:
    """The same contract from the installed entry point's process: exit code, one line, no traceback."""
    (param,) = [param for param in BAD_INPUTS if param.id == case]
    argv, changes, code, fragment = param.values
    args, run_env = _argv_env(argv, changes, env, files)  # type: ignore[arg-type]
    done = run_cli(*args, env=run_env)
    _assert_one_line(done.returncode, done.stdout, done.stderr, code, fragment)  # type: ignore[arg-type]


def test_an_invalid_schema_is_the_servers_one_line(env: dict[str, str], tmp_path: Path) -> None:
    schema = tmp_path / "weird.json"
    schema.write_text('{"type": "nonsense"}')  # valid JSON, so only the server's llguidance can refuse it
    done = run_cli("generate", "x", "-j", str(schema), env=env)
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.splitlines() == [done.stderr.strip()] and "answered 400" in done.stderr, done.stderr


class _ColdStart:
    """A stand-in gateway: ``/ready`` says 503 for the first ``cold`` polls, everything else goes to the stack."""

    def __init__(self, upstream: str, cold: int) -> None:
        self.polls = 0
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def _relay(self) -> None:
                if self.path == "/ready":
                    owner.polls += 1
                    if owner.polls <= cold:
                        self.send_response(503)
                        self.send_header("Retry-After", "1")
                        self.send_header("Content-Length", "0")
                        self.end_headers()
                        return
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                headers = {k: v for k, v in self.headers.items() if k.lower() in {"authorization", "content-type"}}
                answer = httpx.request(self.command, upstream + self.path, content=body, headers=headers, timeout=120)
                self.send_response(answer.status_code)
                self.send_header("Content-Type", answer.headers.get("content-type", "application/json"))
                self.send_header("Content-Length", str(len(answer.content)))
                self.end_headers()
                self.wfile.write(answer.content)

            do_GET = do_POST = _relay

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self) -> _ColdStart:
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def cold_start(stack: Stack) -> Iterator[_ColdStart]:
    with _ColdStart(stack.base_url, cold=2) as stand_in:
        yield stand_in


def test_cold_start_notice_then_the_generation(cold_start: _ColdStart, env: dict[str, str], files: Path) -> None:
    done = run_cli("generate", "x", "-g", str(files / "sum.lark"), "--max-tokens", "32",
                   env={**env, "MAZE_ENDPOINT_URL": cold_start.url})  # fmt: skip
    assert done.returncode == 0, done.stderr
    lines = done.stderr.splitlines()
    assert lines[0] == NOTICE and lines[1].startswith("server ready after "), done.stderr
    assert cold_start.polls == 3
    assert_obeys(SUM, done.stdout, summary(done.stderr)[1])


def test_cold_start_that_outlasts_wait(stack: Stack, env: dict[str, str]) -> None:
    with _ColdStart(stack.base_url, cold=1000) as stand_in:
        done = run_cli("generate", "x", "--wait", "1", env={**env, "MAZE_ENDPOINT_URL": stand_in.url})
    assert done.returncode == 1 and done.stdout == ""
    notice, error = done.stderr.splitlines()
    assert notice == NOTICE
    assert error.startswith("maze-inference: error: the server did not become ready") and "503" in error, error


def test_grammars_lists_the_servers_library_and_the_local_one(env: dict[str, str]) -> None:
    served = run_cli("grammars", env=env)
    local = run_cli("grammars", "--local", env={k: v for k, v in env.items() if k != "MAZE_ENDPOINT_URL"})
    assert served.returncode == local.returncode == 0, served.stderr + local.stderr
    assert {"python", "json"} <= {line.split()[0] for line in served.stdout.splitlines()}
    assert [line.split()[0] for line in local.stdout.splitlines()] == grammars.names()


def test_check_accepts_rejects_and_reads_stdin(files: Path) -> None:
    good = run_cli("check", str(files / "good.py"), "--language", "python")
    assert (good.returncode, good.stdout) == (0, f"{files / 'good.py'}: accepted by python\n")
    bad = run_cli("check", str(files / "bad.py"), "-l", "python")
    assert bad.returncode == 1 and bad.stdout.startswith(f"{files / 'bad.py'}:2:"), bad.stdout
    assert "rejected by python" in bad.stdout and len(bad.stdout.splitlines()) == 1
    piped = run_cli("check", "-", "--grammar", str(files / "arith.lark"), stdin="(1+2)*3")
    assert (piped.returncode, piped.stdout) == (0, f"<stdin>: accepted by {files / 'arith.lark'}\n")
