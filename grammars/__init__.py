"""The grammar library: Lark grammars (llguidance dialect) shipped as package data, and a tiny loader.

Adding a grammar is dropping a ``NAME.lark`` file here whose first lines say what it is::

    // language: python
    // description: one line shown by GET /grammars

The loader reads files through :mod:`importlib.resources`, so it works from a checkout and from an
installed wheel alike. It deliberately imports nothing heavy (no llguidance, no gateway/app code):
the gateway imports it at start-up, and grammars/ stays data plus this loader.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from importlib import resources

__all__ = ["GrammarInfo", "UnknownGrammarError", "get_info", "list_grammars", "load", "names"]

_SUFFIX = ".lark"
_HEADER_LINE = re.compile(r"^//\s*([A-Za-z_-]+)\s*:\s*(.*?)\s*$")


@dataclass(frozen=True)
class GrammarInfo:
    """What a library grammar is: its name (the file stem), language, file name and a one-line summary."""

    name: str
    language: str
    file: str
    description: str


class UnknownGrammarError(KeyError):
    """No grammar of that name; the message lists the ones that exist."""

    def __init__(self, name: str, available: list[str]) -> None:
        super().__init__(name)
        self.name = name
        self.available = available

    def __str__(self) -> str:
        # KeyError's own __str__ would repr() the argument; say something a user can act on.
        return f"unknown grammar {self.name!r}; available: {', '.join(self.available) or '(none)'}"


def _header(text: str) -> dict[str, str]:
    """The ``// key: value`` comment lines at the top of a grammar file."""
    fields: dict[str, str] = {}
    for line in text.splitlines():
        match = _HEADER_LINE.match(line.strip())
        if not match:
            break
        fields.setdefault(match.group(1).lower(), match.group(2))
    return fields


@functools.cache
def _catalogue() -> dict[str, GrammarInfo]:
    """Every ``*.lark`` file next to this module, keyed by name (read once per process)."""
    found: dict[str, GrammarInfo] = {}
    for entry in resources.files(__name__).iterdir():
        if not entry.name.endswith(_SUFFIX) or not entry.is_file():
            continue
        name = entry.name[: -len(_SUFFIX)]
        fields = _header(entry.read_text(encoding="utf-8"))
        found[name] = GrammarInfo(
            name=name,
            language=fields.get("language", name),
            file=entry.name,
            description=fields.get("description", ""),
        )
    return dict(sorted(found.items()))


def names() -> list[str]:
    """Names of all library grammars, sorted."""
    return list(_catalogue())


def list_grammars() -> list[GrammarInfo]:
    """All library grammars, sorted by name."""
    return list(_catalogue().values())


def get_info(name: str) -> GrammarInfo:
    """The :class:`GrammarInfo` for ``name``; raises :class:`UnknownGrammarError` if there is none."""
    try:
        return _catalogue()[name]
    except (KeyError, TypeError):
        raise UnknownGrammarError(name, names()) from None


@functools.cache
def load(name: str) -> str:
    """The Lark text of grammar ``name`` (cached: library grammars are sent on every request)."""
    info = get_info(name)
    return resources.files(__name__).joinpath(info.file).read_text(encoding="utf-8")
