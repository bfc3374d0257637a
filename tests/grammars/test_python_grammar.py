"""python.lark accepts ordinary Python and rejects what Python's own parser rejects (where it can).

Verdicts use llguidance's byte-level tokenizer: llguidance matches bytes, so the verdict is the same
as with Qwen's tokenizer (one test checks that), and the byte level needs no 10 s tokenizer build.
"""

from __future__ import annotations

import ast
import random
import sysconfig
from pathlib import Path

import pytest

import grammars
from grammar_lab.check import uses_four_space_indentation
from grammar_lab.gen_python import MAX_DEPTH
from grammar_lab.masks import replay_with_masks
from grammars.tokenizers import DEFAULT_TOKENIZER_DIR, get_tokenizer
from grammars.validation import check_text

from .markers import needs_qwen

PYTHON = grammars.load("python")


VALID = {
    "assignment": "x = 1\n",
    "no_trailing_newline": "x = 1",
    "comments_before_code": "#!/usr/bin/env python3\n# -*- coding: utf-8 -*-\npass\n",
    "def_full_signature": "def f(a, b: int = 2, *args: str, c, d=4, **kwargs) -> dict[str, int]:\n    return {}\n",
    "positional_only_and_trailing_comma": "def f(a, /, b, *, c,):\n    pass\n",
    "multiline_signature": "def f(\n    self,\n    *,\n    key: str = 'x',  # comment\n    **kw,\n) -> None:\n"
    "    ...\n",
    "class_decorators_docstring": "@dataclass(frozen=True)\nclass A(B, metaclass=M):\n"
    '    """Doc."""\n\n    x: int = 0\n\n    @property\n    def m(self):\n        return self.x\n',
    "if_elif_else": "if a:\n    pass\nelif b:\n    x = 1\nelse:\n    y = 2\n",
    "for_while_else": "for i in range(3):\n    continue\nelse:\n    pass\nwhile True:\n    break\nelse:\n    pass\n",
    "try_full": "try:\n    pass\nexcept (A, B) as e:\n    raise X from e\nexcept Exception:\n    raise\n"
    "else:\n    pass\nfinally:\n    del x\n",
    "try_finally": "try:\n    x()\nfinally:\n    y()\n",
    "except_star": "try:\n    pass\nexcept* ValueError:\n    pass\n",
    "async": "async def f():\n    async with a as b, c:\n        await g()\n    async for x in y:\n"
    "        yield x\n    return [i async for i in aiter()]\n",
    "parenthesized_with": "with (\n    open(a) as f,\n    open(b) as g,\n):\n    pass\n",
    "simple_statements": "def f():\n    global a, b\n    nonlocal c\n    assert x, 'msg'\n    del a[0], b\n"
    "    pass; return\n",
    "imports": "import os, sys as system\nimport a.b.c\nfrom . import a\nfrom ..b.c import (d, e as f,)\n"
    "from x import *\nfrom .. import y\n",
    "lambda": "f = lambda x, *a, y=1, **k: x if y else a\ng = lambda: 0\n",
    "comprehensions": "y = [a for a in b if a]\nd = {k: v for k, v in d.items()}\ns = {x for x in s}\n"
    "g = sum(x for x in y)\nn = [[i for i in r] for r in rows if r if not r]\n",
    "walrus": "if (n := len(a)) > 10:\n    print(n)\nwhile chunk := f.read():\n    pass\n",
    "strings": "s = rb'\\x00' + f\"{x!r:>10}\" + '''a\nb''' + \"\"\"q\"\"\" + Rb'x' + u'x' + br'\\d'\n",
    "implicit_concatenation": "x = ('a'\n     'b' f'{c}')\ny = 'a' 'b'\n",
    "string_line_continuation": "s = 'abc\\\ndef'\n",
    "numbers": "n = 65_536 + 0xFF + 0o17 + 0b1010 + 1.5e-3 + 3j + 1_000.0 + .5 + 5. + 1E10 + 0\n",
    "brackets_span_lines": "x = [\n    1,  # one\n\n    2,\n]\nfoo(a,\n        b)\n",
    "backslash_continuation": "x = 1 + \\\n    2\nassert a, \\\n    'b'\n",
    "comments_and_blank_lines": "x = 1  # trailing\n\n\n# col 0\n    # odd indentation\ny = 2\n",
    "comment_between_blocks": "def f():\n    x = 1\n# at column 0\n    return x\n",
    "blank_line_with_spaces": "def f():\n    x = 1\n    \n    return x\n",
    "crlf": "x = 1\r\nif x:\r\n    y = 2\r\n",
    "one_line_suites": "if x: return_ = 1\nclass A: pass\nfor i in x: print(i); continue\n",
    "slices": "a[1:2, ::3, ...]\na[::-1]\na[:, None]\n",
    "star_expressions": "print(*a, **k, sep='')\nx, *y = z\nreturn_ = *a, b\nd = {**a, 'b': 1}\n",
    "yield": "def f():\n    x = yield\n    y = yield from g()\n    return (yield)\n",
    "operators": "x = -a ** -b // c % d @ e | f ^ g & h << 1 >> 2\nok = a < b <= c != d\n"
    "x += 1\nx **= 2\nx //= 3\nx >>= 1\nx @= m\n",
    "not_in_is_not": "if a not in b and c is not d or not e: pass\n",
    "annotations": "self.x: int = 1\nx: list[int]\n(y): int = 2\n",
    "soft_keywords_as_names": "match = re.match(p, s)\ntype = 3\ncase = 1\n_ = match.group(0)\n",
    "match_statement": "match p:\n    case Point(x=0, y=0):\n        pass\n    case [1, 2, *rest]:\n        pass\n"
    "    case {'k': v, **kw}:\n        pass\n    case 1 | 2 as z if z > 1:\n        pass\n"
    "    case -1 | 1+2j | 'str' | None:\n        pass\n    case _:\n        pass\n",
    "unicode_identifier": "café = 1\n",
    "deepest_nesting": "".join("    " * d + f"if x{d}:\n" for d in range(MAX_DEPTH)) + "    " * MAX_DEPTH + "pass\n",
    "trailing_whitespace_at_eof": "def f():\n    return 1\n    ",
    "comment_at_eof_without_newline": "x = 1\n# end",
}

INVALID = {
    "indent_too_deep": "if x:\n    a = 1\n      b = 2\n",
    "dedent_to_no_level": "if x:\n    a = 1\n  b = 2\n",
    "indented_first_line": "  x = 1\n",
    "two_space_block": "if x:\n  y = 1\n",
    "tab_indentation": "if x:\n\ty = 1\n",
    "missing_block": "if x:\n",
    "missing_colon": "if x\n    pass\n",
    "def_as_identifier": "def = 1\n",
    "class_as_identifier": "class = 3\n",
    "keyword_in_expression": "x = def + 1\n",
    "keyword_as_attribute": "x.if = 1\n",
    "unclosed_paren": "x = (1, 2\n",
    "mismatched_brackets": "x = [1, 2))\n",
    "extra_closer": "print(1))\n",
    "markdown_fence": "```python\nx = 1\n```\n",
    "prose_before_code": "Here is the code:\nx = 1\n",
    "python2_print": "print 'hello'\n",
    "leading_zero": "x = 007\n",
    "unterminated_string": "x = 'abc\n",
    "unterminated_triple_string": "x = '''abc\n",
    "else_without_if": "else:\n    pass\n",
    "two_statements_one_line": "x = 1 y = 2\n",
    "keyword_glued_to_name": "x = a ifb else c\n",
    "glued_in_keyword": "for x inrange(3):\n    pass\n",
    "assign_to_literal": "1 = x\n",
    "assign_to_call": "f() = 1\n",
    "newline_in_call_without_brackets": "x = 1 +\n    2\n",
    "nesting_too_deep": "".join("    " * d + f"if x{d}:\n" for d in range(MAX_DEPTH + 1))
    + "    " * (MAX_DEPTH + 1)
    + "pass\n",
}


@pytest.mark.parametrize("source", VALID.values(), ids=VALID.keys())
def test_accepts_valid_python(source: str) -> None:
    ast.parse(source)  # the snippet itself must be valid Python, or the test proves nothing
    verdict = check_text(PYTHON, source)
    assert verdict.accepted, f"rejected at {verdict.where()}: {verdict.message}"


def test_accepts_python_3_12_type_parameters() -> None:
    """PEP 695 syntax (3.12+): not parseable by this interpreter's ast, so checked on its own."""
    source = "type X = list[int]\ndef f[T: int, *Ts, **P](x: T) -> T: ...\nclass C[T]: pass\n"
    assert check_text(PYTHON, source).accepted


@pytest.mark.parametrize("source", INVALID.values(), ids=INVALID.keys())
def test_rejects_invalid_python(source: str) -> None:
    assert not check_text(PYTHON, source).accepted


def test_failure_position_points_at_the_bad_byte() -> None:
    verdict = check_text(PYTHON, "def f():\n    return 1\n      x = 2\n")
    assert not verdict.accepted
    # Six spaces are still a prefix of the 8-space indentation; the lexer gives up at the `x`.
    assert (verdict.line, verdict.column) == (3, 7)
    assert verdict.offset == len(b"def f():\n    return 1\n      ")


STDLIB_FILES = ["bisect.py", "colorsys.py", "fnmatch.py", "graphlib.py", "shlex.py", "json/decoder.py"]


@pytest.mark.parametrize("relative", STDLIB_FILES)
def test_accepts_real_stdlib_files(relative: str) -> None:
    path = Path(sysconfig.get_paths()["stdlib"]) / relative
    if not path.is_file():
        pytest.skip(f"{path} not on this machine")
    source = path.read_text(encoding="utf-8")
    assert uses_four_space_indentation(source)
    verdict = check_text(PYTHON, source)
    assert verdict.accepted, f"{relative} rejected at {verdict.where()}: {verdict.message}"


def _mutants(source: str, count: int, seed: int) -> list[str]:
    """Small random edits of valid code: deletions and insertions of characters that matter."""
    rng = random.Random(seed)
    pieces = ["(", ")", "[", "]", ":", ",", "=", ".", "'", "\n", "    ", "  ", "if ", "def ", "not "]
    mutants = []
    for _ in range(count):
        i = rng.randrange(len(source))
        if rng.random() < 0.5:
            mutants.append(source[:i] + source[i + 1 :])
        else:
            mutants.append(source[:i] + rng.choice(pieces) + source[i:])
    return mutants


def _python_accepts(source: str) -> bool:
    try:
        ast.parse(source)
    except SyntaxError:
        return False
    return uses_four_space_indentation(source)


def test_agrees_with_pythons_parser_on_random_edits() -> None:
    """Differential check against ``ast.parse`` on mutants of real code (seeded, so repeatable)."""
    source = VALID["class_decorators_docstring"] + VALID["try_full"] + VALID["comprehensions"]
    disagreements = [
        mutant
        for mutant in _mutants(source, 150, seed=1)
        if check_text(PYTHON, mutant).accepted != _python_accepts(mutant)
    ]
    assert disagreements == []


@needs_qwen
def test_qwen_tokenizer_gives_the_same_verdicts() -> None:
    """What vLLM feeds the matcher is Qwen tokens, not bytes: the verdicts must not differ."""
    qwen = get_tokenizer(DEFAULT_TOKENIZER_DIR)
    assert qwen.vocab_size > 150_000
    for name in ["def_full_signature", "strings", "match_statement", "brackets_span_lines"]:
        assert check_text(PYTHON, VALID[name], qwen).accepted, name
    for name in ["indent_too_deep", "markdown_fence", "keyword_glued_to_name"]:
        assert not check_text(PYTHON, INVALID[name], qwen).accepted, name


# Positions where an earlier python.lark made llguidance's per-mask limits trip (bounded lexemes:
# "Too many items" right after `uni = 0x1` three blocks deep; the multi-line condition).
MASK_STRESS = """\
'''Stress the mask computation: deep blocks, hex literals, multi-line conditions.'''

import re  # comment


class Decoder:
    def decode(self, s, end, chunks):
        while True:
            if end < len(s):
                try:
                    esc = s[end]
                except IndexError:
                    raise ValueError("Unterminated string starting at", s, end) from None
                if esc == "u":
                    uni = int(s[end + 1:end + 5], 16)
                    if 0xd800 <= uni <= 0xdbff and s[end:end + 2] == "\\\\u":
                        uni2 = int(s[end + 7:end + 11], 16)
                        if 0xdc00 <= uni2 <= 0xdfff:
                            uni = 0x10000 + (((uni - 0xd800) << 10) | (uni2 - 0xdc00))
                            end += 6
                    chunks.append(chr(uni))
            if (self.max_lines is None or
                    len(chunks) + 1 < self.max_lines or
                    (not chunks or
                     self.drop_whitespace and
                     len(chunks) == 1 and
                     not chunks[0].strip()) and end <= 0b1010_1010):
                chunks.append(f"{end!r:>{8}} {{done}}")
            break
        return "".join(chunks), 1_000.5e-3j
"""


@needs_qwen
def test_generation_masks_stay_within_llguidance_limits() -> None:
    """vLLM computes a mask over all 151k Qwen tokens before every token: replay that, token by token."""
    ast.parse(MASK_STRESS)
    verdict, times = replay_with_masks(PYTHON, MASK_STRESS, get_tokenizer(DEFAULT_TOKENIZER_DIR))
    assert verdict.accepted, f"{verdict.where()}: {verdict.message}"
    assert len(times) > 300
