"""The tokenizers llguidance matches grammars with: its byte-level one, and Qwen2.5's as vLLM uses it.

llguidance runs on bytes: the tokenizer only decides how bytes are chunked, so the byte-level
tokenizer gives the same verdict as Qwen's and an exact failure offset, and it loads instantly.
The Qwen2.5 tokenizer is what vLLM feeds the matcher; building it needs transformers and ~10 s.
"""

from __future__ import annotations

import functools
from pathlib import Path

import llguidance

__all__ = ["DEFAULT_TOKENIZER_DIR", "byte_tokenizer", "get_tokenizer", "qwen_tokenizer"]

#: The project's copy of the Qwen2.5 tokenizer (vocab.json, merges.txt, tokenizer_config.json).
DEFAULT_TOKENIZER_DIR = Path(__file__).resolve().parents[1] / "app" / "tokenizer" / "qwen2.5-coder"


@functools.cache
def byte_tokenizer() -> llguidance.LLTokenizer:
    """llguidance's built-in byte-level tokenizer: no files, no transformers, exact offsets."""
    return llguidance.LLTokenizer("byte")


@functools.cache
def qwen_tokenizer(tokenizer_dir: Path = DEFAULT_TOKENIZER_DIR) -> llguidance.LLTokenizer:
    """The Qwen2.5 tokenizer as llguidance sees it under vLLM (about 10 s to build, so cached)."""
    # Heavy imports (transformers takes seconds), only when this tokenizer is asked for.
    import llguidance.hf
    from transformers import AutoTokenizer

    return llguidance.hf.from_tokenizer(AutoTokenizer.from_pretrained(str(tokenizer_dir)))


def get_tokenizer(tokenizer_dir: Path | str | None = DEFAULT_TOKENIZER_DIR) -> llguidance.LLTokenizer:
    """Qwen's tokenizer from ``tokenizer_dir`` when it exists there, else the byte-level one.

    Pass ``"byte"`` or ``None`` to ask for the byte-level tokenizer explicitly.
    """
    if tokenizer_dir is None or str(tokenizer_dir) == "byte":
        return byte_tokenizer()
    path = Path(tokenizer_dir)
    if (path / "vocab.json").is_file():
        return qwen_tokenizer(path)
    return byte_tokenizer()
