"""Dev corpora of real source files, written by others, for measuring the library grammars.

Usage::

    python -m grammar_lab.corpus [LANGUAGE ...]          # files per project, per language
    python -m grammar_lab.corpus fetch [LANGUAGE ...]    # install what the corpora are read from

Why the corpora are not in git: they are tens of megabytes of other projects' code, and every one of
them is a package the registries here already serve. :data:`SOURCES` says, per language, where the
files are; :mod:`grammar_lab.toolchains` says which packages put them there, and ``fetch`` installs
those (Debian packages need root).

A corpus file is 1-20 KB (big enough to be real code, small enough to be one generation) and is
accepted by the language's real parser (:mod:`grammar_lab.parsers`), so every file a grammar rejects is
the grammar's fault. Parser verdicts are cached on disk by content hash: the real parsers take
minutes on a few thousand files and the files never change between runs.

:func:`files` interleaves projects (one file from each in turn), so a ``limit`` still samples several
projects instead of the first directory in alphabetical order.
"""

from __future__ import annotations

import argparse
import ast
import hashlib
import io
import itertools
import json
import re
import subprocess
import sys
import sysconfig
import tokenize
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from grammar_lab import parsers, toolchains
from grammar_lab.settings import settings
from grammar_lab.toolchains import site_packages, ziglang_dir

#: Size window for corpus files, in bytes.
MIN_SIZE = 1_000
MAX_SIZE = 20_000
#: Where Debian unpacks Go libraries: one folder per import path (host/owner/repo, gopkg.in/name).
GOCODE = Path("/usr/share/gocode/src")


class CorpusUnavailableError(RuntimeError):
    """The packages a corpus is read from are not installed; the message says how to get them."""


@dataclass(frozen=True)
class Source:
    """Where one language's corpus comes from.

    ``projects`` maps a project name to the folders its files are read from; ``suffixes`` picks the
    files; ``skip`` drops paths that are deliberately not ordinary code (test fixtures of parsers).
    """

    language: str
    projects: Callable[[], dict[str, list[Path]]]
    suffixes: tuple[str, ...]
    install_hint: str
    skip: tuple[str, ...] = field(default=())


#: Third-party packages the project's own install brings (its dependencies and theirs), each a
#: different author and style; those not installed are skipped.
PYTHON_PACKAGES = (
    "fastapi",
    "starlette",
    "httpx",
    "pydantic",
    "click",
    "jinja2",
    "requests",
    "rich",
    "anyio",
    "aiohttp",
    "tenacity",
    "yaml",
    "attr",
    "packaging",
    "uvicorn",
    "websockets",
    "hypothesis",
    "urllib3",
    "jsonschema",
)


def _python_projects() -> dict[str, list[Path]]:
    """CPython's stdlib (top level and packages) plus the third-party packages installed here."""
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    projects: dict[str, list[Path]] = {
        "cpython": sorted(path for path in stdlib.iterdir() if path.name not in ("site-packages", "test"))
    }
    for name in PYTHON_PACKAGES:
        if (site_packages() / name).is_dir():
            projects[name] = [site_packages() / name]
    return projects


#: Installed packages that ship JSON data (schemas, configs, test vectors), each a different author.
JSON_PACKAGES = (
    "vllm",
    "jsonschema_specifications",
    "litellm",
    "botocore",
    "cfnlint",
    "pycountry",
    "transformers",
    "openapi_schema_validator",
    "schemathesis",
)


def _json_projects() -> dict[str, list[Path]]:
    """The JSON files of those of :data:`JSON_PACKAGES` that are installed here."""
    return {name: [site_packages() / name] for name in JSON_PACKAGES if (site_packages() / name).is_dir()}


def _go_projects() -> dict[str, list[Path]]:
    """Each top-level package tree of the Go standard library (net, crypto, go, runtime, ...), and
    each repository under /usr/share/gocode (by import path; aliases that are symlinks counted once)."""
    roots = sorted(Path("/usr/share").glob("go-1.*/src"))
    if not roots:
        return {}
    src = roots[-1]
    projects = {entry.name: [entry] for entry in sorted(src.iterdir()) if entry.is_dir()}
    hosts = sorted(GOCODE.iterdir()) if GOCODE.is_dir() else []
    for host in hosts:
        for repo in sorted(host.glob("*" if host.name == "gopkg.in" else "*/*")):
            real = repo.resolve()
            if real.is_dir() and real.is_relative_to(GOCODE):
                projects.setdefault(real.relative_to(GOCODE).as_posix(), [real])
    return projects


def _rust_projects() -> dict[str, list[Path]]:
    """Each crate Debian unpacked into /usr/share/cargo/registry (its name without the version)."""
    projects: dict[str, list[Path]] = {}
    for crate in sorted(Path("/usr/share/cargo/registry").glob("*-*")):
        name = crate.name.rsplit("-", 1)[0]
        projects.setdefault(name, [crate])  # sorted: keep one version of each crate
    return projects


def _typescript_projects() -> dict[str, list[Path]]:
    """TypeScript sources shipped in npm packages, and the compiler's own lib declarations."""
    modules = toolchains.npm_modules()
    folders = {
        "rxjs": modules / "rxjs" / "src",
        "zod": modules / "zod" / "src",
        "effect": modules / "effect" / "src",
        "tanstack-query-core": modules / "@tanstack" / "query-core" / "src",
        "typescript-lib": modules / "typescript" / "lib",
        "type-fest": modules / "type-fest" / "source",
        "trpc-server": modules / "@trpc" / "server" / "src",
        "mobx": modules / "mobx" / "src",
        "redux-toolkit": modules / "@reduxjs" / "toolkit" / "src",
        "immer": modules / "immer" / "src",
    }
    return {name: [path] for name, path in folders.items() if path.is_dir()}


def _zig_projects() -> dict[str, list[Path]]:
    """Zig's standard library, split by its top-level namespaces, plus the compiler's own Zig code."""
    root = ziglang_dir()
    if root is None:
        return {}
    lib = root / "lib"
    projects = {f"std.{entry.name}": [entry] for entry in sorted((lib / "std").iterdir()) if entry.is_dir()}
    projects["std"] = [path for path in sorted((lib / "std").glob("*.zig"))]
    for other in ("compiler", "compiler_rt", "init", "docs"):
        if (lib / other).is_dir():
            projects[other] = [lib / other]
    for name, version in toolchains.ZIG_WHEELS.items():
        if (unpacked := toolchains.unpacked_wheel(name, version)).is_dir():
            projects[name] = [unpacked]
    return projects


SOURCES: dict[str, Source] = {
    "python": Source(
        "python", _python_projects, (".py",), "nothing to install: the stdlib is always there", skip=("/test/",)
    ),
    "json": Source("json", _json_projects, (".json",), "nothing to install: site-packages ships JSON"),
    "go": Source("go", _go_projects, (".go",), "apt-get install golang-go", skip=("/testdata/",)),
    "rust": Source("rust", _rust_projects, (".rs",), f"apt-get install {' '.join(toolchains.RUST_APT)}"),
    "typescript": Source(
        "typescript", _typescript_projects, (".ts",), "python -m grammar_lab.corpus fetch typescript (npm install)"
    ),
    "zig": Source("zig", _zig_projects, (".zig",), "pip install ziglang; python -m grammar_lab.corpus fetch zig"),
}


def uses_four_space_indentation(source: str) -> bool:
    """True when every indented block is exactly 4 more spaces (no tabs): what python.lark encodes."""
    try:
        levels = [0]
        for tok in tokenize.generate_tokens(io.StringIO(source).readline):
            if tok.type == tokenize.INDENT:
                if "\t" in tok.string or len(tok.string) != levels[-1] + 4:
                    return False
                levels.append(len(tok.string))
            elif tok.type == tokenize.DEDENT:
                levels.pop()
    except (SyntaxError, tokenize.TokenError, IndentationError, ValueError):
        return False
    return True


def has_python_statement(source: str) -> bool:
    """True when the module holds at least one statement (a docstring counts), not only comments."""
    try:
        return bool(ast.parse(source).body)
    except (SyntaxError, ValueError):
        return False


#: `//` and `/* */` comments (Go, Rust, TypeScript, Zig), and "..." strings so that a `//` inside one
#: (a URL) is not taken for a comment; scanned left to right.
_STRING_OR_COMMENT = re.compile(r'"(?:[^"\\\n]|\\.)*"|//[^\n]*|/\*.*?\*/', re.DOTALL)
_STRING_OR_BRACKET = re.compile(r'"(?:[^"\\\n]|\\.)*"|[\[\]]')


def _without_comments(source: str) -> str:
    return _STRING_OR_COMMENT.sub(lambda match: match.group() if match.group().startswith('"') else "", source)


def has_code_beyond_comments(source: str) -> bool:
    """True when something other than whitespace and comments is left."""
    return bool(_without_comments(source).strip())


def has_rust_item(source: str) -> bool:
    """True when something besides comments and inner attributes (`#![doc = ...]`) is left: clap's
    tutorial modules are docs only, and rust.lark wants one item."""
    rest = _without_comments(source).strip()
    while rest.startswith("#!["):
        depth, end = 0, len(rest)
        for match in _STRING_OR_BRACKET.finditer(rest):
            depth += {"[": 1, "]": -1}.get(match.group(), 0)
            if depth == 0:
                end = match.end()
                break
        rest = rest[end:].lstrip()
    return bool(rest)


#: Extra conditions beyond the real parser: a convention the grammar documents it requires. Every
#: code grammar wants at least one item (issue 15), so files that hold only comments (TypeScript's
#: `/// <reference lib=... />` lib files, a licence-only `__init__.py`) are not corpus programs.
CONVENTIONS: dict[str, Callable[[str], bool]] = {
    "python": lambda text: has_python_statement(text) and uses_four_space_indentation(text),
    "go": has_code_beyond_comments,
    "rust": has_rust_item,
    "typescript": has_code_beyond_comments,
    "zig": has_code_beyond_comments,
}


def candidates(language: str, min_size: int = MIN_SIZE, max_size: int = MAX_SIZE) -> dict[str, list[Path]]:
    """Files per project in the size window, before the parser filter (sorted, deterministic)."""
    source = SOURCES[language]
    projects = source.projects()
    if not projects:
        raise CorpusUnavailableError(f"no {language} corpus on this machine; install it with: {source.install_hint}")
    found: dict[str, list[Path]] = {}
    for name, roots in projects.items():
        paths: list[Path] = []
        for root in roots:
            walk = [root] if root.is_file() else sorted(root.rglob("*"))
            for path in walk:
                posix = path.as_posix()
                if not posix.endswith(source.suffixes) or any(part in posix for part in source.skip):
                    continue
                try:
                    if path.is_file() and min_size <= path.stat().st_size <= max_size:
                        paths.append(path)
                except OSError:
                    continue
        if paths:
            found[name] = paths
    return found


def _verdict_cache(language: str) -> Path:
    return settings().verdicts_dir / f"{language}.json"


def _valid(language: str, paths: list[Path]) -> list[bool]:
    """The real parser's verdict per file (cached by content hash), plus the language's conventions."""
    cache_file = _verdict_cache(language)
    cache: dict[str, bool] = json.loads(cache_file.read_text()) if cache_file.is_file() else {}
    texts: list[str | None] = []
    keys: list[str] = []
    for path in paths:
        data = path.read_bytes()
        keys.append(hashlib.sha256(data).hexdigest())
        try:
            texts.append(data.decode("utf-8"))
        except UnicodeDecodeError:
            texts.append(None)
    unknown = [i for i, key in enumerate(keys) if key not in cache and texts[i] is not None]
    if unknown:
        verdicts = parsers.check(language, [texts[i] or "" for i in unknown])
        for i, message in zip(unknown, verdicts, strict=True):
            cache[keys[i]] = message is None
        cache_file.parent.mkdir(parents=True, exist_ok=True)
        cache_file.write_text(json.dumps(cache, sort_keys=True))
    convention = CONVENTIONS.get(language, lambda _text: True)
    return [
        text is not None and cache.get(key, False) and convention(text) for key, text in zip(keys, texts, strict=True)
    ]


def by_project(language: str, min_size: int = MIN_SIZE, max_size: int = MAX_SIZE) -> dict[str, list[Path]]:
    """Corpus files per project: in the size window, UTF-8, accepted by the real parser."""
    found = candidates(language, min_size, max_size)
    flat = [path for paths in found.values() for path in paths]
    valid = dict(zip(flat, _valid(language, flat), strict=True))
    return {name: kept for name, paths in found.items() if (kept := [p for p in paths if valid[p]])}


def files(language: str, limit: int | None = None, min_size: int = MIN_SIZE, max_size: int = MAX_SIZE) -> list[Path]:
    """The corpus: valid files, one project after another in turn, at most ``limit`` of them.

    Candidates are interleaved first and judged by the parser in chunks, so a small ``limit`` costs
    a few parser runs rather than one per file of every project (rustfmt runs once per file).
    """
    found = candidates(language, min_size, max_size)
    interleaved = [path for group in itertools.zip_longest(*found.values()) for path in group if path is not None]
    wanted = len(interleaved) if limit is None else limit
    chunk = max(64, wanted + wanted // 4)
    kept: list[Path] = []
    for start in range(0, len(interleaved), chunk):
        batch = interleaved[start : start + chunk]
        kept += [path for path, ok in zip(batch, _valid(language, batch), strict=True) if ok]
        if len(kept) >= wanted:
            break
    return kept[:wanted]


def main(argv: list[str] | None = None) -> int:
    """List corpus sizes per project, or ``fetch`` what they are read from."""
    parser = argparse.ArgumentParser(description="Dev corpora of real files for the library grammars.")
    parser.add_argument("words", nargs="*", help="[fetch] [LANGUAGE ...] (default: every language)")
    args = parser.parse_args(argv)
    words = list(args.words)
    fetching = bool(words) and words[0] == "fetch"
    languages = words[1:] if fetching else words
    languages = languages or list(SOURCES)
    unknown = [lang for lang in languages if lang not in SOURCES]
    if unknown:
        print(f"unknown language {unknown[0]!r}; known: {', '.join(SOURCES)}", file=sys.stderr)
        return 2
    try:
        if fetching:
            toolchains.install(languages)
            return 0
        for language in languages:
            projects = by_project(language)
            total = sum(len(paths) for paths in projects.values())
            print(f"{language}: {total} files from {len(projects)} projects")
            for name, paths in projects.items():
                print(f"  {name}: {len(paths)}")
    except (CorpusUnavailableError, toolchains.CannotInstallError, subprocess.CalledProcessError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
