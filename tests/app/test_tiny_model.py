"""The tiny random Qwen2: shape, real tokenizer, chat template, determinism, cache reuse.

Uses the session-wide `tiny_model` fixture (tests/conftest.py) so the suite builds it once.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest

from app.tiny_model import MARKER_NAME, TINY_MODEL_VERSION, build_tiny_model, default_tiny_model_dir, is_complete

CODE = 'def héllo(name: str) -> str:\n\treturn f"hi {name} 👋"  # ü\n\n\nclass A:\n    pass\n'


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_config_has_the_tiny_qwen2_shape(tiny_model: Path) -> None:
    config = json.loads((tiny_model / "config.json").read_text())
    assert config["architectures"] == ["Qwen2ForCausalLM"]
    assert config["model_type"] == "qwen2"
    expected = {
        "hidden_size": 128,
        "intermediate_size": 256,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "head_dim": 32,
        "tie_word_embeddings": True,
        "max_position_embeddings": 4096,
        "vocab_size": 151665,  # 151,643 BPE tokens + 22 added special tokens
        "dtype": "bfloat16",
        "eos_token_id": 151645,  # <|im_end|>
    }
    assert {key: config[key] for key in expected} == expected


def test_weights_are_bf16_safetensors_sized_to_the_full_tokenizer(tiny_model: Path) -> None:
    from safetensors import safe_open
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_model)
    with safe_open(str(tiny_model / "model.safetensors"), framework="pt") as weights:
        embed = weights.get_tensor("model.embed_tokens.weight")
        names = list(weights.keys())
    assert "lm_head.weight" not in names  # tied to the embedding
    assert str(embed.dtype) == "torch.bfloat16"
    assert tuple(embed.shape) == (len(tokenizer), 128)


def test_tokenizer_round_trips_code_and_has_special_tokens(tiny_model: Path) -> None:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_model)
    ids = tokenizer.encode(CODE)
    assert tokenizer.decode(ids) == CODE
    assert len(ids) < len(CODE)  # real BPE merges, not a byte/character fallback
    assert tokenizer.encode("hello world") == [14990, 1879]
    assert tokenizer.convert_tokens_to_ids(["<|im_start|>", "<|im_end|>", "<|fim_prefix|>"]) == [151644, 151645, 151659]


def test_chat_template_is_saved_with_the_model(tiny_model: Path) -> None:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_model)
    assert tokenizer.chat_template
    text = tokenizer.apply_chat_template(
        [{"role": "user", "content": "write x"}], tokenize=False, add_generation_prompt=True
    )
    assert text.startswith("<|im_start|>system\n")
    assert text.endswith("<|im_start|>user\nwrite x<|im_end|>\n<|im_start|>assistant\n")


def test_generation_config_and_marker(tiny_model: Path) -> None:
    generation = json.loads((tiny_model / "generation_config.json").read_text())
    assert generation["eos_token_id"] == [151645, 151643]
    assert "temperature" not in generation  # no sampling defaults sneak into test requests
    marker = json.loads((tiny_model / MARKER_NAME).read_text())
    assert marker["version"] == TINY_MODEL_VERSION
    assert is_complete(tiny_model)


def test_complete_directory_is_reused_without_rebuilding(tiny_model: Path) -> None:
    before = {p.name: p.stat().st_mtime_ns for p in tiny_model.iterdir()}
    assert build_tiny_model(tiny_model) == tiny_model
    assert {p.name: p.stat().st_mtime_ns for p in tiny_model.iterdir()} == before


def test_stale_marker_rebuilds_identical_weights(tiny_model: Path, tmp_path: Path) -> None:
    # One build proves both: an outdated (or missing) marker triggers a rebuild, and the fixed
    # seed makes that rebuild byte-identical.
    copy = tmp_path / "copy"
    shutil.copytree(tiny_model, copy)
    (copy / MARKER_NAME).write_text(json.dumps({"version": TINY_MODEL_VERSION - 1}))
    (copy / "model.safetensors").write_bytes(b"truncated")
    assert not is_complete(copy)
    build_tiny_model(copy)
    assert is_complete(copy)
    assert sha256(copy / "model.safetensors") == sha256(tiny_model / "model.safetensors")
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".copy.build-")]  # staging removed


def test_default_dir_honours_maze_cache_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("MAZE_CACHE_DIR", str(tmp_path))
    assert default_tiny_model_dir() == tmp_path / "tiny-model"
    monkeypatch.delenv("MAZE_CACHE_DIR")
    assert default_tiny_model_dir() == Path.home() / ".cache" / "maze-inference" / "tiny-model"
