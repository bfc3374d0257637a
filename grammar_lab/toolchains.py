"""The toolchains the grammar tests need, where they are installed, and how to install what is missing.

The corpora (:mod:`grammar_lab.corpus`) and the real parsers (:mod:`grammar_lab.parsers`) come from
packages the registries here serve:

==========  ==========================================================================================
go          Debian: golang-go (the standard library's sources, and gofmt) and Go libraries
rust        Debian: rustfmt (the parser) and librust-*-dev crates (their sources)
typescript  npm: typescript (the parser) and packages that ship TypeScript sources; node runs them
zig         PyPI: ziglang (a dev dependency: zig fmt and its lib/std) and wheels that ship Zig sources
==========  ==========================================================================================

:func:`install` (``python -m grammar_lab.corpus fetch``, the ``make corpora`` step) installs only what
is missing. It first works out everything it would need to do and what is missing to do it (no
apt-get or dpkg, not root, no npm or node); if anything is, it installs nothing and raises
:class:`CannotInstallError` with one line that names it.
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
from dataclasses import dataclass
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
#: The Rust parser, installed only when no rustfmt is found (rustup's counts). Debian's own ``rustfmt``
#: is rustc 1.63's, whose parser still takes 2024-only syntax (let chains) under ``--edition 2021``;
#: ``rustfmt-web`` is the current rustc that Debian keeps for browser builds (1.96 on bookworm).
RUSTFMT_APT = "rustfmt-web"
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

LANGUAGES = ("go", "rust", "typescript", "zig")


class CannotInstallError(RuntimeError):
    """Something the grammar tests need is missing and cannot be installed here; one line says what."""


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


# ----------------------------------------------------------------------------- what is missing


@dataclass(frozen=True)
class Plan:
    """What installing the toolchains of some languages still has to do here."""

    apt: tuple[str, ...] = ()
    npm: bool = False
    wheels: tuple[tuple[str, str], ...] = ()
    needs_node: bool = False
    needs_ziglang: bool = False


def _debian_missing(packages: tuple[str, ...]) -> tuple[str, ...]:
    """The packages dpkg does not list as installed (all of them where there is no dpkg to ask)."""
    if shutil.which("dpkg") is None:
        return packages
    return tuple(p for p in packages if subprocess.run(["dpkg", "-s", p], capture_output=True).returncode != 0)


def _npm_missing() -> bool:
    """True unless every npm package is installed at its pinned version."""
    for name, version in NPM_PACKAGES.items():
        manifest = npm_modules() / name / "package.json"
        if not manifest.is_file() or json.loads(manifest.read_text())["version"] != version:
            return True
    return False


def plan(languages: list[str]) -> Plan:
    """What is missing for ``languages`` (any of :data:`LANGUAGES`; others need nothing)."""
    apt: tuple[str, ...] = ()
    if "go" in languages:
        apt += GO_APT
    if "rust" in languages:
        apt += RUST_APT + (() if rustfmt() else (RUSTFMT_APT,))
    return Plan(
        apt=_debian_missing(apt) if apt else (),
        npm="typescript" in languages and _npm_missing(),
        wheels=tuple(
            (name, version) for name, version in ZIG_WHEELS.items() if not unpacked_wheel(name, version).is_dir()
        )
        if "zig" in languages
        else (),
        needs_node="typescript" in languages and shutil.which("node") is None,
        needs_ziglang="zig" in languages and ziglang_dir() is None,
    )


def blockers(todo: Plan) -> list[str]:
    """What keeps ``todo`` from being done here, each as a short clause (empty when nothing does)."""
    found: list[str] = []
    apt = " ".join(todo.apt)
    if todo.apt and (shutil.which("apt-get") is None or shutil.which("dpkg") is None):
        found.append(f"no apt-get/dpkg here (not Debian/Ubuntu?) to install {apt}")
    elif todo.apt and os.geteuid() != 0:
        found.append(f"not root, so cannot run: apt-get install -y {apt}")
    if todo.npm and shutil.which("npm") is None:
        found.append("npm not found, so cannot install the TypeScript corpus (apt-get install npm)")
    elif todo.needs_node:
        found.append("node not found, which runs the TypeScript parser (apt-get install nodejs)")
    if todo.needs_ziglang:
        found.append("the ziglang package is not installed (pip install -e '.[dev]')")
    return found


def check_can_install(todo: Plan) -> None:
    """Raise :class:`CannotInstallError` naming every blocker, in one line, before anything is installed."""
    found = blockers(todo)
    if found:
        raise CannotInstallError(
            "cannot install what the grammar tests need: "
            + "; ".join(found)
            + ". Run as root on Debian/Ubuntu, or install them by hand (README: Tests)."
        )


# ----------------------------------------------------------------------------- installing


def _apt_install(packages: tuple[str, ...]) -> None:
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update", "-qq"], check=True, env=env)
    subprocess.run(["apt-get", "install", "-y", "-qq", "--no-install-recommends", *packages], check=True, env=env)


def _npm_install() -> None:
    npm_dir = settings().npm_dir
    npm_dir.mkdir(parents=True, exist_ok=True)
    if not (npm_dir / "package.json").is_file():
        (npm_dir / "package.json").write_text('{"name": "maze-corpus", "private": true}\n')
    wanted = [f"{name}@{version}" for name, version in NPM_PACKAGES.items()]
    subprocess.run(
        ["npm", "install", "--no-audit", "--no-fund", "--ignore-scripts", "--save-exact", *wanted],
        cwd=npm_dir,
        check=True,
    )


def _unpack_wheel(name: str, version: str) -> None:
    """``pip download`` the wheel (no dependencies) and unzip it where :func:`unpacked_wheel` says."""
    with tempfile.TemporaryDirectory() as tmp:
        pip = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary", ":all:"]
        subprocess.run([*pip, "--dest", tmp, f"{name}=={version}"], check=True)
        with zipfile.ZipFile(next(Path(tmp).glob("*.whl"))) as wheel:
            wheel.extractall(unpacked_wheel(name, version))


def install(languages: list[str]) -> None:
    """Install what ``languages`` still miss, or raise :class:`CannotInstallError` having installed nothing."""
    todo = plan(languages)
    check_can_install(todo)
    if todo.apt:
        _apt_install(todo.apt)
    if todo.npm:
        _npm_install()
    for name, version in todo.wheels:
        _unpack_wheel(name, version)
