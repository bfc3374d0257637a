"""The Qwen2.5 tokenizer as llguidance sees it, built once for the plugin's tests."""

from __future__ import annotations

import llguidance
import pytest


@pytest.fixture(scope="session")
def ll_tokenizer() -> llguidance.LLTokenizer:
    from grammars.tokenizers import qwen_tokenizer

    return qwen_tokenizer()
