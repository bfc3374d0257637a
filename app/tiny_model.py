"""Build a tiny random-weight Qwen2 model with the real Qwen2.5 tokenizer, for vLLM on CPU.

There is no model hub here, and tests must exercise the real vLLM + llguidance path. A random model
emits random text, but every *constrained* output must still match its grammar, which is exactly what
the end-to-end tests assert. The real tokenizer matters: grammar-to-token alignment (multi-byte BPE
tokens, special tokens) is where constrained decoding breaks, and a toy vocabulary would hide that.

Heavy imports (torch, transformers) happen inside the functions, so importing this module is cheap.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

from app.settings import AppSettings

#: Bump when anything below changes the files, so existing caches are rebuilt instead of reused.
TINY_MODEL_VERSION = 1

#: Marker written last: its presence (with the right version) means the directory is complete.
MARKER_NAME = "maze-tiny-model.json"

#: The tokenizer files shipped in this package (Apache-2.0, see its SOURCE.md).
TOKENIZER_DIR = Path(__file__).parent / "tokenizer" / "qwen2.5-coder"

SEED = 0

#: Shape of the model. head_dim must be >= 32 for vLLM's CPU attention kernels; the vocabulary is
#: filled in from the tokenizer. ~20M parameters, almost all in the 151,665-row embedding.
ARCHITECTURE: dict[str, Any] = {
    "hidden_size": 128,
    "intermediate_size": 256,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "head_dim": 32,
    "max_position_embeddings": 4096,
    "tie_word_embeddings": True,  # halves the size: the embedding is the whole model here
    "rms_norm_eps": 1e-6,
    "use_sliding_window": False,
}


def default_tiny_model_dir() -> Path:
    """`$MAZE_CACHE_DIR/tiny-model`, else `~/.cache/maze-inference/tiny-model` (`AppSettings.tiny_model_dir`).

    A per-user cache rather than a temp dir: the model is deterministic, so every run and every test
    session can reuse one copy instead of paying the build again.
    """
    return AppSettings().tiny_model_dir


def is_complete(model_dir: Path) -> bool:
    """True if `model_dir` holds a finished build of the current TINY_MODEL_VERSION."""
    try:
        marker = json.loads((model_dir / MARKER_NAME).read_text())
    except (OSError, ValueError):
        return False
    return isinstance(marker, dict) and marker.get("version") == TINY_MODEL_VERSION


def build_tiny_model(out_dir: Path) -> Path:
    """Build the model into `out_dir` unless a complete build is already there; return `out_dir`.

    Files are written to a temporary directory next to `out_dir` and moved in one by one, with the
    marker last, so an interrupted build is never mistaken for a complete one, and two processes
    building at once (parallel test sessions) both end with the same, complete directory.
    """
    out_dir = Path(out_dir)
    if is_complete(out_dir):
        return out_dir
    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out_dir.parent, prefix=f".{out_dir.name}.build-") as tmp:
        staging = Path(tmp)
        marker = _write_model(staging)
        for path in sorted(staging.iterdir()):
            path.chmod(0o644)  # safetensors writes 0600; a shared cache must be readable
            os.replace(path, out_dir / path.name)
        _write_marker(out_dir, marker)
    return out_dir


def _write_model(staging: Path) -> dict[str, Any]:
    """Write config, weights, tokenizer and generation config into `staging`; return marker data."""
    import torch
    from transformers import AutoTokenizer, GenerationConfig, Qwen2Config, Qwen2ForCausalLM

    tokenizer = AutoTokenizer.from_pretrained(TOKENIZER_DIR)
    if not tokenizer.chat_template:
        raise RuntimeError(f"{TOKENIZER_DIR} has no chat template; /v1/chat/completions would fail")
    # len() counts the added special tokens (<|im_end|>, <|fim_*|>, ...); vocab_size does not,
    # and a model smaller than its tokenizer makes vLLM index out of the embedding.
    vocab_size = len(tokenizer)
    eos_id = tokenizer.convert_tokens_to_ids("<|im_end|>")
    pad_id = tokenizer.convert_tokens_to_ids("<|endoftext|>")

    config = Qwen2Config(
        vocab_size=vocab_size,
        bos_token_id=pad_id,  # Qwen2.5 uses <|endoftext|> as bos and pad, <|im_end|> as eos
        eos_token_id=eos_id,
        pad_token_id=pad_id,
        dtype="bfloat16",
        **ARCHITECTURE,
    )
    torch.manual_seed(SEED)  # same seed, same weights: test failures reproduce across machines
    model = Qwen2ForCausalLM(config).to(torch.bfloat16).eval()
    model.save_pretrained(staging, safe_serialization=True)
    # Neutral generation defaults on purpose: vLLM applies generation_config.json as default
    # sampling parameters, and tests should see only the parameters they send.
    GenerationConfig(bos_token_id=pad_id, eos_token_id=[eos_id, pad_id], pad_token_id=pad_id).save_pretrained(staging)
    tokenizer.save_pretrained(staging)
    return {
        "version": TINY_MODEL_VERSION,
        "seed": SEED,
        "vocab_size": vocab_size,
        "parameters": sum(p.numel() for p in model.parameters()),
        "tokenizer_source": "app/tokenizer/qwen2.5-coder (Qwen2.5 tokenizer, Apache-2.0)",
        "architecture": ARCHITECTURE,
    }


def _write_marker(out_dir: Path, marker: dict[str, Any]) -> None:
    """Write the marker atomically (temp file + rename): a half-written marker must not count."""
    tmp = out_dir / f".{MARKER_NAME}.{os.getpid()}"
    tmp.write_text(json.dumps(marker, indent=2, sort_keys=True) + "\n")
    os.replace(tmp, out_dir / MARKER_NAME)
