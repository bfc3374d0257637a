"""grammars.tokenizers: the byte-level tokenizer unless a Qwen tokenizer folder is there."""

from __future__ import annotations

from pathlib import Path

import grammars
from grammars import tokenizers


def test_tokenizer_falls_back_to_bytes_when_the_folder_is_missing(tmp_path: Path) -> None:
    assert tokenizers.get_tokenizer(tmp_path / "absent") is tokenizers.byte_tokenizer()
    assert tokenizers.get_tokenizer("byte") is tokenizers.byte_tokenizer()
    assert tokenizers.get_tokenizer(None) is tokenizers.byte_tokenizer()


def test_default_tokenizer_folder_is_the_repo_copy() -> None:
    repo = Path(grammars.__file__).resolve().parents[1]
    assert repo / "app" / "tokenizer" / "qwen2.5-coder" == tokenizers.DEFAULT_TOKENIZER_DIR
