"""The languages' own parsers, as the judges of what a grammar lets through.

A grammar is *sound* when every text it accepts is a program the language's real parser accepts.
These are the parsers the grammar library is held to (one per language, each the reference
implementation's own front end where the registries here provide one):

==========  ======================================================================
python      :func:`ast.parse` of this interpreter
json        :func:`json.loads`, refusing NaN/Infinity (RFC 8259)
go          ``gofmt -e`` (Debian golang-go)
rust        ``rustfmt --edition 2021 --emit stdout`` (rustc's parser)
typescript  the TypeScript compiler API's parse diagnostics (npm ``typescript``)
zig         ``zig fmt --stdin``, the parser without AstGen's checks (PyPI ``ziglang``)
==========  ======================================================================

:func:`check` takes a batch of texts so the slow ones can amortise process start-up: gofmt and the
TypeScript compiler see the whole batch at once, rustfmt and zig run one file per process on a
small thread pool.
"""

from __future__ import annotations

import ast
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from grammar_lab import toolchains

__all__ = ["LANGUAGES", "ParserUnavailableError", "check"]

#: Per-file timeout for external parsers: none of them takes long on 20 KB unless something is wrong.
TIMEOUT_S = 60


class ParserUnavailableError(RuntimeError):
    """The language's parser is not installed; the message says how to install it."""


def _python(texts: list[str]) -> list[str | None]:
    verdicts: list[str | None] = []
    for text in texts:
        try:
            ast.parse(text)
            verdicts.append(None)
        except (SyntaxError, ValueError) as error:
            verdicts.append(f"{type(error).__name__}: {error}")
    return verdicts


def _json(texts: list[str]) -> list[str | None]:
    def reject(constant: str) -> None:
        raise ValueError(f"{constant} is not JSON (RFC 8259)")

    verdicts: list[str | None] = []
    for text in texts:
        try:
            json.loads(text, parse_constant=reject)
            verdicts.append(None)
        except ValueError as error:
            verdicts.append(str(error))
    return verdicts


def _tool(name: str, hint: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise ParserUnavailableError(f"{name} is not installed ({hint})")
    return path


def _write_batch(folder: Path, texts: list[str], suffix: str) -> list[Path]:
    paths = [folder / f"{i:05d}{suffix}" for i in range(len(texts))]
    for path, text in zip(paths, texts, strict=True):
        path.write_text(text, encoding="utf-8")
    return paths


def _go(texts: list[str]) -> list[str | None]:
    gofmt = _tool("gofmt", "apt-get install golang-go")
    with tempfile.TemporaryDirectory() as tmp:
        paths = _write_batch(Path(tmp), texts, ".go")
        result = subprocess.run([gofmt, "-e", "-l", *map(str, paths)], capture_output=True, text=True)
        errors: dict[str, list[str]] = {}
        for line in result.stderr.splitlines():
            name, _, message = line.partition(":")
            errors.setdefault(Path(name).name, []).append(line.split(":", 1)[-1] if message else line)
    return ["; ".join(errors[p.name][:3]) if p.name in errors else None for p in paths]


def _one_per_process(
    texts: list[str], suffix: str, argv: Callable[[Path], list[str]], stdin: bool = False
) -> list[str | None]:
    """Run a parser once per text (from a temp file, or on stdin), two at a time; the verdict is its exit status."""

    def judge(item: tuple[Path, str]) -> str | None:
        path, text = item
        if not stdin:
            path.write_text(text, encoding="utf-8")
        try:
            result = subprocess.run(
                argv(path), input=text if stdin else None, capture_output=True, text=True, timeout=TIMEOUT_S
            )
        except subprocess.TimeoutExpired:
            return f"parser timed out after {TIMEOUT_S} s"
        if result.returncode == 0:
            return None
        return (result.stderr or result.stdout).strip()[:2000] or f"exit status {result.returncode}"

    with tempfile.TemporaryDirectory() as tmp:
        items = [(Path(tmp) / f"{i:05d}{suffix}", text) for i, text in enumerate(texts)]
        with ThreadPoolExecutor(max_workers=max(2, os.cpu_count() or 2)) as pool:
            return list(pool.map(judge, items))


def _rust(texts: list[str]) -> list[str | None]:
    rustfmt = toolchains.rustfmt()
    if rustfmt is None:
        raise ParserUnavailableError("rustfmt is not installed (python -m grammar_lab.corpus fetch rust)")
    # Formatting from stdin parses just this file: a path argument would make rustfmt follow `mod x;`
    # declarations into files that do not exist here.
    argv = [str(rustfmt), "--edition", "2021", "--emit", "stdout"]
    return _one_per_process(texts, ".rs", lambda _path: argv, stdin=True)


def _zig(texts: list[str]) -> list[str | None]:
    root = toolchains.ziglang_dir()
    if root is None:
        raise ParserUnavailableError("zig is not installed (pip install ziglang)")
    zig = str(root / "zig")
    # `zig fmt` is Zig's parser alone. `zig ast-check` adds AstGen, which also refuses unused locals,
    # undeclared names and shadowing: facts about a whole program that no grammar can know.
    return _one_per_process(texts, ".zig", lambda _path: [zig, "fmt", "--stdin"], stdin=True)


#: Reads a JSON list of texts on stdin, prints a JSON list of the first parse diagnostic (or null) each.
_TS_SCRIPT = r"""
const ts = require(process.env.MAZE_TYPESCRIPT);
let input = "";
process.stdin.setEncoding("utf8");
process.stdin.on("data", (chunk) => { input += chunk; });
process.stdin.on("end", () => {
  const verdicts = JSON.parse(input).map((text, i) => {
    const file = ts.createSourceFile(`f${i}.ts`, text, ts.ScriptTarget.Latest, false, ts.ScriptKind.TS);
    const diagnostics = file.parseDiagnostics || [];
    if (diagnostics.length === 0) return null;
    const d = diagnostics[0];
    const where = file.getLineAndCharacterOfPosition(d.start || 0);
    return `${where.line + 1}:${where.character + 1}: ` + ts.flattenDiagnosticMessageText(d.messageText, " ");
  });
  process.stdout.write(JSON.stringify(verdicts));
});
"""


def _typescript(texts: list[str]) -> list[str | None]:
    node = _tool("node", "install Node.js")
    package = toolchains.typescript_package()
    if package is None:
        raise ParserUnavailableError("npm typescript is not installed (python -m grammar_lab.corpus fetch typescript)")
    result = subprocess.run(
        [node, "-e", _TS_SCRIPT],
        input=json.dumps(texts),
        capture_output=True,
        text=True,
        env={**os.environ, "MAZE_TYPESCRIPT": str(package)},
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(f"the TypeScript parser failed: {result.stderr.strip()[:500]}")
    return json.loads(result.stdout)


LANGUAGES: dict[str, Callable[[list[str]], list[str | None]]] = {
    "python": _python,
    "json": _json,
    "go": _go,
    "rust": _rust,
    "typescript": _typescript,
    "zig": _zig,
}


def check(language: str, texts: list[str]) -> list[str | None]:
    """The real parser's verdict on each text: None when it parses, else the parser's message."""
    if language not in LANGUAGES:
        raise KeyError(f"no parser for {language!r}; known: {', '.join(LANGUAGES)}")
    if not texts:
        return []
    return LANGUAGES[language](texts)


if __name__ == "__main__":  # python -m grammar_lab.parsers LANGUAGE FILE...: the verdict per file
    lang, *names = sys.argv[1:]
    for name, verdict in zip(names, check(lang, [Path(n).read_text(encoding="utf-8") for n in names]), strict=True):
        print(f"{name}: {'ok' if verdict is None else verdict}")
