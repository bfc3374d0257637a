"""Skip markers for grammar tests that need a tool this machine may lack.

The languages' own parsers judge the grammars' snippets, walks and corpus files; ``make corpora``
(``python -m grammar_lab.corpus fetch``) installs them. The Qwen tokenizer copy is what vLLM feeds the
matcher, so mask checks replay with it.
"""

from __future__ import annotations

import shutil

import pytest

from grammar_lab import parsers, toolchains
from grammars.tokenizers import DEFAULT_TOKENIZER_DIR


def _has_typescript() -> bool:
    try:
        parsers.check("typescript", ["let x = 1\n"])
    except parsers.ParserUnavailableError:
        return False
    return True


needs_qwen = pytest.mark.skipif(not (DEFAULT_TOKENIZER_DIR / "vocab.json").is_file(), reason="no Qwen tokenizer copy")
needs_gofmt = pytest.mark.skipif(shutil.which("gofmt") is None, reason="gofmt (apt golang-go) not installed")
needs_rustfmt = pytest.mark.skipif(
    toolchains.rustfmt() is None, reason="rustfmt not installed (python -m grammar_lab.corpus fetch rust)"
)
needs_tsc = pytest.mark.skipif(not _has_typescript(), reason="npm typescript not installed (make corpora)")
needs_zig = pytest.mark.skipif(toolchains.ziglang_dir() is None, reason="zig not installed (pip install ziglang)")
