"""How many sequences a profile admits, what the container around it needs, and what a token costs.

`app.fit` answers "does vLLM start?" (its own rule: weights + activations + overhead + ONE full
sequence of KV per GPU) and "how big is the KV pool?". This module turns that into a profile's
`max_num_seqs` with a stated workload model, instead of the worst case of every sequence reaching
`max_model_len` (which admitted 3 sequences on an L40S whose pool holds 16 typical requests):

* **KV rule.** A typical request is `Workload.typical_tokens` (2,048: prompt + completion; the
  context limit stays 8,192). The pool vLLM allocates must hold `max_num_seqs` typical sequences with
  `Workload.kv_headroom` (25%) to spare. Longer requests still run: vLLM pages KV on demand and, when
  the pool is full, preempts the newest sequence and recomputes it later. `Fit.full_length_seqs`
  says how many 8k sequences at once that takes (the preemption risk).
* **Mask rule.** Each step, the grammar mask of every constrained sequence is filled on the CPU
  (`MASK_MS_PER_SEQ`: mean CPU per sequence per step along real files, llguidance 1.7.6, Qwen vocab;
  Python is the costliest). Async scheduling fills step N's masks while the GPU runs step N's forward,
  so masks stay off the critical path while `seqs x mask_ms / threads <= decode step`. vLLM 0.32 fills
  them on one thread (`mask_seqs(..., threads=1)`: which rule binds *today*); the engine plugin
  (`app/vllm_plugin`, issue 17) fills them on `Profile.mask_threads` threads.
* **Cap.** At most `SEQS_CAP` (64), the most that was measured on a GPU.

Decode step = the weights each GPU reads per step / its bandwidth (+ PCIe all-reduces with tensor
parallelism): H100 BF16 19.6 ms, H100 FP8 10.2, L40S FP8 39.7, A100 BF16 32.8 - the memory-bound
floor that `../shared/gpu-rig` measurements sit just above (H100 BF16 ITL 24.9 ms at one stream).

Costs are ceiling arithmetic times `EFFICIENCY` until GPU measurements replace them; the container's
CPU and memory reservations are billed on top of the GPU and are part of $/h here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from app.fit import Fit, checkpoint_bytes, fit
from app.profiles import Profile

# ------------------------------------------------------------------------------------- workload


@dataclass(frozen=True)
class Workload:
    """What a typical request looks like, and how much slack the sizing keeps."""

    #: Prompt + completion of a typical code request, in tokens.
    typical_tokens: int = 2048
    #: The KV pool must hold max_num_seqs x typical_tokens x this.
    kv_headroom: float = 1.25
    #: The grammar whose masks size the CPU side (the costliest library grammar).
    mask_grammar: str = "python"
    #: Completion tokens of one generation, for "$ per 1,000 generations" (the gateway's default max_tokens).
    completion_tokens: int = 512


WORKLOAD = Workload()

#: Mean mask CPU per sequence per decode step, in ms, measured along real files (DESIGN.md, BENCHMARKS.md 2).
MASK_MS_PER_SEQ: dict[str, float] = {
    "python": 1.15,
    "typescript": 1.01,
    "rust": 0.92,
    "zig": 0.78,
    "go": 0.64,
    "json": 0.07,
}
#: Most sequences any profile admits: 64 streams is the largest batch measured on a GPU (H100, FP8).
SEQS_CAP = 64
#: Fewest mask threads a GPU profile gets: one slow mask (5-13 ms at a statement start) must not stall the rest.
MIN_MASK_THREADS = 2
#: Share of the bandwidth ceiling real decoding reaches. Measured on an H100 (gpu-rig): 0.78 at one
#: stream (BF16, 40 of 51 tok/s), 0.72 at 48 (BF16), 0.61 at 64 (FP8); the lowest is used throughout.
EFFICIENCY = 0.6
#: Two all-reduces per layer per decode step when tensor parallel over PCIe (no NVLink on L40S): a
#: small-message NCCL all-reduce costs tens of microseconds there. An estimate, not a measurement.
PCIE_ALLREDUCE_S = 25e-6

# ------------------------------------------------------------------------------- the container

#: CPU cores besides the mask threads: vLLM's API server, its engine core (scheduler, and the model
#: runner with one GPU), the gateway, and grammar compiles. Each extra GPU adds a worker process.
BASE_CPU_CORES = 4.0
#: Host memory besides the weights being read: API server, engine core, gateway, torch.compile's
#: workers and CUDA's host-side state (GiB). Each extra GPU worker process adds `WORKER_MEMORY_GIB`.
BASE_MEMORY_GIB = 16
WORKER_MEMORY_GIB = 8
#: Host memory for the checkpoint while it loads, as a fraction of its size: safetensors shards are
#: memory-mapped and copied to the GPU one by one; the page cache they fill counts against the container.
CHECKPOINT_MEMORY_SHARE = 0.25

#: Modal's list prices for what a container reserves beside the GPU ($0.0000131 per core-second,
#: $0.00000222 per GiB-second as modal.com/pricing listed them; not re-checked from here).
CPU_PRICE_PER_CORE_HOUR = 0.0000131 * 3600
MEMORY_PRICE_PER_GIB_HOUR = 0.00000222 * 3600


def host_cpu(profile: Profile) -> float:
    """CPU cores to reserve: the mask threads plus everything else the container runs."""
    return BASE_CPU_CORES + (profile.tensor_parallel_size - 1) + profile.mask_threads


def host_memory_gib(profile: Profile) -> int:
    """Host memory to reserve (GiB): the processes plus a share of the checkpoint being loaded."""
    f = fit(profile)
    loading = math.ceil(checkpoint_bytes(f.model, profile.quantization) * CHECKPOINT_MEMORY_SHARE / 2**30)
    return BASE_MEMORY_GIB + WORKER_MEMORY_GIB * (profile.tensor_parallel_size - 1) + loading


def price_per_hour(profile: Profile) -> float:
    """$/h of one container at list prices: its GPUs plus the CPU and memory it reserves."""
    f = fit(profile)
    gpu = (f.gpu.price_list_per_hour or 0.0) * f.gpus
    return gpu + host_cpu(profile) * CPU_PRICE_PER_CORE_HOUR + host_memory_gib(profile) * MEMORY_PRICE_PER_GIB_HOUR


# ------------------------------------------------------------------------------- decode arithmetic


def decode_step_s(f: Fit, batch: int = 1, context: int = 0) -> float:
    """Memory-bound decode step: each GPU reads its weights and the batch's KV once (+ PCIe all-reduces)."""
    read = f.weights + batch * context * f.kv_bytes_per_token
    sync = 2 * f.model.layers * PCIE_ALLREDUCE_S if f.gpus > 1 else 0.0
    return read / f.gpu.bandwidth_bytes_s + sync


def step_throughput(f: Fit, batch: int, context: int) -> float:
    """Upper bound on summed decode tokens/s for `batch` sequences of `context` tokens each."""
    return batch / decode_step_s(f, batch, context)


def kv_seqs(f: Fit, workload: Workload = WORKLOAD) -> int:
    """Typical sequences the KV pool holds with the workload's headroom."""
    return int(f.kv_capacity_tokens // (workload.typical_tokens * workload.kv_headroom))


def mask_seqs(f: Fit, threads: int, workload: Workload = WORKLOAD) -> int:
    """Sequences whose masks fill on `threads` threads within one (shortest) decode step."""
    return int(decode_step_s(f) * 1e3 * threads // MASK_MS_PER_SEQ[workload.mask_grammar])


def mask_threads_needed(f: Fit, seqs: int, workload: Workload = WORKLOAD) -> int:
    """Threads that fill `seqs` masks within one decode step (at least MIN_MASK_THREADS)."""
    work_ms = seqs * MASK_MS_PER_SEQ[workload.mask_grammar]
    return max(MIN_MASK_THREADS, math.ceil(work_ms / (decode_step_s(f) * 1e3)))


def usd_per_million(tokens_per_s: float, usd_per_hour: float) -> float:
    """$ per 1,000,000 output tokens at a sustained rate."""
    return usd_per_hour / (tokens_per_s * 3600) * 1e6


# ------------------------------------------------------------------------------------- the verdict


@dataclass(frozen=True)
class Sizing:
    """One profile judged by the workload model: what binds, what it risks, what it costs."""

    profile: Profile
    fit: Fit
    workload: Workload
    #: Typical sequences the KV pool holds with headroom.
    kv_seqs: int
    #: Sequences whose Python masks fit one decode step on one thread (vLLM 0.32 today).
    mask_seqs_today: int
    #: ... and on the profile's mask_threads (the engine plugin).
    mask_seqs_plugin: int
    #: The max_num_seqs the rules give: min(kv_seqs, mask_seqs_plugin, SEQS_CAP).
    recommended_max_num_seqs: int

    @property
    def max_num_seqs(self) -> int:
        return self.profile.max_num_seqs or 1

    @property
    def step_ms(self) -> float:
        return decode_step_s(self.fit) * 1e3

    @property
    def binds_today(self) -> str:
        """What limits a fully constrained batch of max_num_seqs with vLLM 0.32's serial masks."""
        return "masks" if self.mask_seqs_today < self.max_num_seqs else "KV"

    @property
    def binds_with_plugin(self) -> str:
        """The same with the masks on mask_threads threads: the KV pool, or the 64-sequence cap."""
        if self.mask_seqs_plugin < self.max_num_seqs:
            return "masks"
        return "KV" if self.kv_seqs <= SEQS_CAP else "cap"

    @property
    def preempts_after(self) -> int:
        """Sequences at max_model_len that fit at once; one more and vLLM preempts (recomputes) one."""
        return self.fit.full_length_seqs

    @property
    def usd_per_hour(self) -> float:
        return price_per_hour(self.profile)

    @property
    def single_stream_tok_s(self) -> float:
        return step_throughput(self.fit, 1, self.workload.typical_tokens) * EFFICIENCY

    @property
    def batch_tok_s(self) -> float:
        """max_num_seqs unconstrained streams of typical_tokens of context, times EFFICIENCY."""
        return step_throughput(self.fit, self.max_num_seqs, self.workload.typical_tokens) * EFFICIENCY

    def constrained_batch_tok_s(self, threads: int) -> float:
        """max_num_seqs Python-constrained streams with masks on `threads` threads (1 = vLLM 0.32)."""
        forward_s = decode_step_s(self.fit, self.max_num_seqs, self.workload.typical_tokens) / EFFICIENCY
        masks_s = self.max_num_seqs * MASK_MS_PER_SEQ[self.workload.mask_grammar] / 1e3 / threads
        return self.max_num_seqs / max(forward_s, masks_s)

    def usd_per_million(self, tokens_per_s: float) -> float:
        return usd_per_million(tokens_per_s, self.usd_per_hour)

    def usd_per_thousand_generations(self, tokens_per_s: float) -> float:
        """$ for 1,000 generations of workload.completion_tokens at a sustained rate (no idle time)."""
        return self.usd_per_million(tokens_per_s) * 1000 * self.workload.completion_tokens / 1e6


def size(profile: Profile, workload: Workload = WORKLOAD) -> Sizing:
    """Judge a GPU profile by the workload model."""
    f = fit(profile)
    kv = kv_seqs(f, workload)
    plugin = mask_seqs(f, profile.mask_threads, workload)
    return Sizing(
        profile=profile,
        fit=f,
        workload=workload,
        kv_seqs=kv,
        mask_seqs_today=mask_seqs(f, 1, workload),
        mask_seqs_plugin=plugin,
        recommended_max_num_seqs=min(kv, plugin, SEQS_CAP),
    )


# ------------------------------------------------------------------------------------ decisions

#: The seed plan's estimate: $0.84 a day for 1,000 generations, with its L40S at $1.20/h (0.7 GPU-hours).
SEED_USD_PER_DAY_1000_GENERATIONS = 0.84

#: Why no profile sets `--kv-cache-dtype fp8` (read in vLLM 0.32's source; see README "Profiles").
KV_CACHE_DTYPE_DECISION = (
    "BF16 KV cache on every profile. (1) Ada (L40S, L4: SM 8.9) runs FlashAttention 2, which cannot read "
    "an FP8 KV cache (vllm/v1/attention/backends/fa_utils.py, flash_attn_supports_kv_cache_dtype: FP8 KV "
    "only with FA3 on SM90 or FA4 on SM100), so --kv-cache-dtype fp8 moves attention to the next backend "
    "in vllm/platforms/cuda.py's order, FlashInfer (flashinfer-python 0.7.0.post1 is in the image lock), "
    "whose kernels are JIT-compiled on first use: a longer, untested cold start. (2) The checkpoints carry "
    "no KV scales, so vLLM quantizes K and V with scale 1.0 (vllm/model_executor/layers/quantization/"
    "kv_cache.py warns 'Using KV cache scaling factor 1.0 for fp8_e4m3'), an accuracy cost nobody has "
    "measured on Qwen2.5-Coder. (3) Where FP8 KV is cheap (H100, FA3), it buys nothing: h100-fp8 already "
    "holds the 64-sequence cap, and h100-bf16 exists to be the full-quality reference. The one profile it "
    "would help is l40s-fp8 (pool 33k -> 66k tokens, 12 -> 25 sequences): worth a GPU measurement of "
    "FlashInfer's speed and of output quality before it becomes a default."
)

#: Why the FP8 profiles quantize online instead of loading a pre-quantized checkpoint.
PREQUANTIZED_FP8_DECISION = (
    "Online FP8 (fp8_per_tensor) from the BF16 checkpoint. No model hub is reachable from where this was "
    "written. A stored copy of the hub's file listing exists for RedHatAI/Qwen2.5-Coder-32B-FP8-dynamic "
    "(compressed-tensors, 34.3 GB in 7 shards), but that is the *base* model, not the Instruct one served "
    "here; RedHatAI/Qwen2.5-Coder-32B-Instruct-FP8-dynamic is named only in third-party deployment scripts, "
    "so its files, quantization_config and revision could not be checked against vLLM 0.32. Before "
    "switching, check it with `hf download --dry-run` and pin its revision. The price of "
    "waiting: every FP8 cold start reads the 65.5 GB BF16 checkpoint and quantizes it again "
    "(`modal run modal_deploy.py::download_weights` at least keeps the download out of the first GPU boot)."
)

__all__ = [
    "EFFICIENCY",
    "KV_CACHE_DTYPE_DECISION",
    "MASK_MS_PER_SEQ",
    "PREQUANTIZED_FP8_DECISION",
    "SEED_USD_PER_DAY_1000_GENERATIONS",
    "SEQS_CAP",
    "WORKLOAD",
    "Sizing",
    "Workload",
    "decode_step_s",
    "host_cpu",
    "host_memory_gib",
    "kv_seqs",
    "mask_seqs",
    "mask_threads_needed",
    "price_per_hour",
    "size",
    "step_throughput",
    "usd_per_million",
]
