"""The toolchains the grammar tests need, where they are installed, and how to install what is missing.

The corpora (:mod:`grammar_lab.corpus`) and the real parsers (:mod:`grammar_lab.parsers`) come from
packages the registries here serve:

==========  ==========================================================================================
go          Debian: golang-go (the standard library's sources, and gofmt) and Go libraries
rust        Debian: librust-*-dev crates (their sources); rustfmt (the parser) from rustup
typescript  npm: typescript (the parser) and packages that ship TypeScript sources; node runs them
zig         PyPI: ziglang (a dev dependency: zig fmt and its lib/std) and wheels that ship Zig sources
==========  ==========================================================================================

:func:`install` (``python -m grammar_lab.corpus fetch``, the ``make corpora`` step) installs only what
is missing.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import zipfile
from collections.abc import Callable
from pathlib import Path

from grammar_lab.settings import settings

#: Debian's Go toolchain (its standard library sources and gofmt, the Go parser), and Debian-packaged
#: Go libraries from other authors (their sources, and their dependencies', land in /usr/share/gocode):
#: a CLI framework, assertions, diffing, routing, logging, concurrency helpers.
GO_APT = (
    "golang-go",
    "golang-github-spf13-cobra-dev",
    "golang-github-stretchr-testify-dev",
    "golang-github-google-go-cmp-dev",
    "golang-github-gorilla-mux-dev",
    "golang-github-sirupsen-logrus-dev",
    "golang-golang-x-sync-dev",
)
#: Debian-packaged Rust crates (their sources land in /usr/share/cargo/registry) from many authors.
RUST_APT = (
    "librust-serde-dev",
    "librust-regex-dev",
    "librust-syn-dev",
    "librust-tokio-dev",
    "librust-clap-dev",
    "librust-rand-dev",
    "librust-anyhow-dev",
    "librust-itertools-dev",
    "librust-log-dev",
    "librust-bytes-dev",
    "librust-hashbrown-dev",
    "librust-nom-dev",
    "librust-futures-util-dev",
    "librust-chrono-dev",
    "librust-rayon-dev",
)
#: npm packages that ship TypeScript sources (``src/``) or declarations; typescript is also the TS parser.
#: Each is a different project and style: type-fest is type-level code (mapped and conditional types),
#: tRPC uses `using` declarations, MobX decorators and classes, Redux Toolkit and Immer generic APIs.
NPM_PACKAGES = {
    "typescript": "5.9.3",
    "rxjs": "7.8.2",
    "zod": "4.6.7",
    "effect": "4.1.0",
    "@tanstack/query-core": "5.108.4",
    "type-fest": "5.10.0",
    "@trpc/server": "11.25.2",
    "mobx": "7.1.3",
    "@reduxjs/toolkit": "2.16.0",
    "immer": "11.2.14",
}
#: PyPI wheels that ship Zig sources, downloaded and unpacked (nothing installed): Zig code from
#: outside the Zig project itself (pydust binds CPython; licence headers, `!try`, its own idioms).
ZIG_WHEELS = {"ziggy-pydust": "0.26.0"}


class CannotInstallError(RuntimeError):
    """Something the grammar tests need is missing and cannot be installed here; the message says what."""


# ----------------------------------------------------------------------------- where things are


def site_packages() -> Path:
    """This interpreter's site-packages (pure-Python packages), where PyPI corpora and ziglang live."""
    return Path(sysconfig.get_paths()["purelib"])


def ziglang_dir() -> Path | None:
    """The PyPI ``ziglang`` package folder (the zig binary and its lib/), or None when not installed."""
    path = site_packages() / "ziglang"
    return path if (path / "lib").is_dir() else None


def rustfmt() -> Path | None:
    """rustfmt on PATH (Debian's), else rustup's in ~/.cargo/bin, else None."""
    found = shutil.which("rustfmt")
    path = Path(found) if found else Path.home() / ".cargo" / "bin" / "rustfmt"
    return path if path.is_file() else None


def npm_modules() -> Path:
    """The node_modules folder the npm corpora and the TypeScript compiler are installed into."""
    return settings().npm_dir / "node_modules"


def typescript_package() -> Path | None:
    """The npm ``typescript`` package (the TypeScript parser), or None when not installed."""
    package = npm_modules() / "typescript"
    return package if (package / "package.json").is_file() else None


def unpacked_wheel(name: str, version: str) -> Path:
    """Where :data:`ZIG_WHEELS` entry ``name`` is unpacked."""
    return settings().pypi_dir / f"{name}-{version}"


# ----------------------------------------------------------------------------- installing


def _apt_install(packages: tuple[str, ...]) -> None:
    missing = [p for p in packages if subprocess.run(["dpkg", "-s", p], capture_output=True).returncode != 0]
    if not missing:
        return
    if os.geteuid() != 0:
        raise CannotInstallError(f"run as root: apt-get install -y {' '.join(missing)}")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update", "-qq"], check=True, env=env)
    subprocess.run(["apt-get", "install", "-y", "-qq", "--no-install-recommends", *missing], check=True, env=env)


def _npm_install() -> None:
    have = all((npm_modules() / name / "package.json").is_file() for name in NPM_PACKAGES)
    if have and all(
        json.loads((npm_modules() / name / "package.json").read_text())["version"] == version
        for name, version in NPM_PACKAGES.items()
    ):
        return
    npm = shutil.which("npm")
    if npm is None:
        raise CannotInstallError("npm is not installed (apt-get install npm, or install Node.js)")
    npm_dir = settings().npm_dir
    npm_dir.mkdir(parents=True, exist_ok=True)
    if not (npm_dir / "package.json").is_file():
        (npm_dir / "package.json").write_text('{"name": "maze-corpus", "private": true}\n')
    wanted = [f"{name}@{version}" for name, version in NPM_PACKAGES.items()]
    subprocess.run(
        [npm, "install", "--no-audit", "--no-fund", "--ignore-scripts", "--save-exact", *wanted],
        cwd=npm_dir,
        check=True,
    )


def _unpack_wheels(wheels: dict[str, str]) -> None:
    """``pip download`` each wheel (no dependencies) and unzip it where :func:`unpacked_wheel` says."""
    for name, version in wheels.items():
        target = unpacked_wheel(name, version)
        if target.is_dir():
            continue
        with tempfile.TemporaryDirectory() as tmp:
            pip = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary", ":all:"]
            subprocess.run([*pip, "--dest", tmp, f"{name}=={version}"], check=True)
            with zipfile.ZipFile(next(Path(tmp).glob("*.whl"))) as wheel:
                wheel.extractall(target)


FETCHERS: dict[str, Callable[[], None]] = {
    "go": lambda: _apt_install(GO_APT),
    "rust": lambda: _apt_install(RUST_APT),
    "typescript": _npm_install,
    "zig": lambda: _unpack_wheels(ZIG_WHEELS),
}


def install(languages: list[str]) -> None:
    """Install the packages the corpora (and, for Go and TypeScript, the parsers) of ``languages`` come from."""
    for language in languages:
        FETCHERS.get(language, lambda: None)()
