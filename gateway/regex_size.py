"""How large a constraint's regexes become once their *required* repetitions are written out.

llguidance compiles regexes lazily, token by token, so a grammar like ``start: /(a{1000}){1000}/`` passes
its validation in a millisecond and then stalls vLLM's engine for seconds on the first token mask (every
request on the GPU waits) before failing with "too many expressions constructed" and HTTP 500. What
costs is what a match is forced to contain: llguidance checks that a lexeme can still match, which means
walking to its shortest match, and ``(a{1000}){1000}`` cannot match before a million ``a``. Optional
repetition is nearly free, however large or nested. First-mask times with the Qwen2.5 tokenizer on one
CPU core (llguidance 1.7.6):

=================================  ===========  =================
regex                              forced size  first mask
=================================  ===========  =================
``(a{1000}){1000}``                 1,000,000   1.9 s, then fails
``(a{300}){300}``                      90,000   0.2 s
``(a{100}){1000}``                    100,000   0.24 s
``"(...){0,50000}"`` (a string)            11   0.3 ms
``((a{0,100}){0,100}){0,100}``              1   12 ms
``(a{0,1000}b{0,1000}){0,1000}``            2   1.6 ms
=================================  ===========  =================

So the measure is the regex's size with each repetition ``{m,n}`` counted ``m`` times (at least once;
nested ones multiply), and constraints over ``MAZE_MAX_REGEX_SIZE`` are refused with a 400 before they
are sent. Bounded lexemes such as a string of at most 5,000 characters stay small by this measure, as
they should: the library grammars use them so a weak model cannot stay in one lexeme forever.

Regexes are read with Python's own regex parser; llguidance's dialect (Rust's ``regex`` crate) is
almost the same, and a regex Python cannot parse is left to llguidance to judge.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Iterator
from typing import Any

try:  # Python 3.11 ships the parser as re._parser; older names kept for other interpreters
    # typeshed describes the parser only under its old public names, not as re's private modules.
    from re import _constants as sre_constants  # type: ignore[attr-defined]
    from re import _parser as sre_parse  # type: ignore[attr-defined]
except ImportError:  # pragma: no cover
    import sre_constants
    import sre_parse

#: A Lark regex terminal: ``/.../flags``, with ``\/`` allowed inside.
LARK_REGEX = re.compile(r"/((?:[^/\\\n]|\\.)+)/[imslux]*")
REPEATS = {sre_constants.MAX_REPEAT, sre_constants.MIN_REPEAT, getattr(sre_constants, "POSSESSIVE_REPEAT", None)}


def _size(items: Any) -> int:
    total = 0
    for op, arg in items:
        if op in REPEATS:
            low, _high, sub = arg
            total += max(low, 1) * _size(sub)
        elif op == sre_constants.SUBPATTERN:
            total += _size(arg[-1])
        elif op == sre_constants.BRANCH:
            total += sum(_size(branch) for branch in arg[1])
        elif op in (sre_constants.ASSERT, sre_constants.ASSERT_NOT):
            total += _size(arg[1])
        else:
            total += 1
    return total


def regex_size(pattern: str) -> int | None:
    """The regex's size with each repetition written out its minimum number of times (at least once);
    ``None`` if Python cannot parse it."""
    try:
        with warnings.catch_warnings():  # e.g. "possible set intersection": fine in llguidance's dialect
            warnings.simplefilter("ignore")
            return _size(sre_parse.parse(pattern))
    except (re.error, RecursionError, OverflowError, ValueError, TypeError):
        return None


def _schema_patterns(schema: Any) -> Iterator[str]:
    if isinstance(schema, dict):
        for key, value in schema.items():
            if key == "pattern" and isinstance(value, str):
                yield value
            elif key == "patternProperties" and isinstance(value, dict):
                yield from (k for k in value if isinstance(k, str))
                yield from _schema_patterns(value)
            else:
                yield from _schema_patterns(value)
    elif isinstance(schema, list):
        for item in schema:
            yield from _schema_patterns(item)


def constraint_regexes(kind: str, spec: Any) -> Iterator[str]:
    """Every regex a constraint holds: the regex itself, a Lark grammar's ``/.../`` terminals, or a JSON
    schema's ``pattern`` values."""
    if kind == "regex" and isinstance(spec, str):
        yield spec
    elif kind == "grammar" and isinstance(spec, str):
        yield from (match.group(1) for match in LARK_REGEX.finditer(spec))
    elif kind == "json":
        yield from _schema_patterns(spec)


def largest_regex(kind: str, spec: Any) -> tuple[int, str] | None:
    """``(size, regex)`` of the constraint's largest regex, or ``None`` when it holds none Python can read."""
    sizes = [(size, regex) for regex in constraint_regexes(kind, spec) if (size := regex_size(regex)) is not None]
    return max(sizes, key=lambda pair: pair[0]) if sizes else None
