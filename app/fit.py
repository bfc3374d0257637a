"""Will a profile's model fit on its GPU(s)? The memory arithmetic, from published model and GPU specs.

The seed plan put Qwen2.5-Coder-32B-Instruct in BF16 on a 48 GB L40S and called it 32.7 GB; it is
65.5 GB and cannot start. A GPU profile is only real if vLLM's own start-up rule holds on every GPU::

    weights + activations + runtime overhead + KV cache of ONE max_model_len sequence
        <= gpu_memory_utilization x GPU memory

vLLM gives the KV cache everything else in that budget (`Fit.kv_capacity_tokens`) and pages it on
demand: sequences take blocks as they grow, and when the pool runs out the newest one is preempted
and recomputed later. So the budget does not have to hold `max_num_seqs` full-length sequences; how
many sequences a profile admits is decided by a workload model in `app.sizing`, and `Fit` reports
the preemption risk (`full_length_seqs`: how many sequences at max_model_len fit at once).

With tensor parallelism (`--tensor-parallel-size N`) every GPU holds 1/N of the weights and of each
token's KV (KV heads are split across GPUs), so the sum is per GPU.

Measured on an H100 (CUDA vLLM 0.25, `../shared/gpu-rig`): the `h100-bf16` flags gave 50,576 KV
tokens where this arithmetic predicts 45,873, and FP8 weights 165,568-169,072 where it predicts
~164,800: the estimate errs low, which is the safe side for sizing.

Units: bytes everywhere; GB means 10**9 bytes (what vendors and Hugging Face print), MiB 2**20 (what drivers print).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from app.profiles import Profile

GB = 10**9
KiB = 2**10
MiB = 2**20

# ----------------------------------------------------------------------------------------- models


@dataclass(frozen=True)
class ModelSpec:
    """The numbers of a model's published `config.json` (and model card) that memory depends on."""

    name: str
    #: Total parameters, embeddings included (model card / safetensors index: BF16 bytes / 2).
    params: float
    layers: int
    hidden_size: int
    intermediate_size: int
    kv_heads: int
    head_dim: int
    vocab_size: int
    #: Qwen2.5-Coder 7B and larger keep input embedding and LM head separate (two vocab x hidden tables).
    tied_embeddings: bool = False

    @property
    def embedding_params(self) -> float:
        """Embedding table(s) plus LM head: never quantized by AWQ or vLLM's online FP8."""
        return self.vocab_size * self.hidden_size * (1 if self.tied_embeddings else 2)

    @property
    def linear_params(self) -> float:
        """Parameters in the transformer blocks' linear layers (norms and biases are noise here)."""
        return self.params - self.embedding_params

    def kv_bytes_per_token(self, dtype_bytes: int = 2) -> int:
        """K and V for one token across all layers: 2 x layers x kv_heads x head_dim x bytes."""
        return 2 * self.layers * self.kv_heads * self.head_dim * dtype_bytes


#: Qwen/Qwen2.5-Coder-32B-Instruct config.json: 64 layers, hidden 5120, 40 query / 8 KV heads
#: (head_dim 128), intermediate 27648, vocab 152064, untied. 65.53 GB of BF16 safetensors = 32.76B.
QWEN25_CODER_32B = ModelSpec(
    name="Qwen2.5-Coder-32B",
    params=32.76e9,
    layers=64,
    hidden_size=5120,
    intermediate_size=27648,
    kv_heads=8,
    head_dim=128,
    vocab_size=152064,
)

#: Qwen/Qwen2.5-Coder-14B-Instruct config.json: 48 layers, hidden 5120, 40 query / 8 KV heads
#: (head_dim 128), intermediate 13824, vocab 152064, untied. 29.54 GB of BF16 safetensors = 14.77B.
QWEN25_CODER_14B = ModelSpec(
    name="Qwen2.5-Coder-14B",
    params=14.77e9,
    layers=48,
    hidden_size=5120,
    intermediate_size=13824,
    kv_heads=8,
    head_dim=128,
    vocab_size=152064,
)

#: Hugging Face id -> architecture. The official -AWQ repos share their base model's config.
MODELS: Mapping[str, ModelSpec] = MappingProxyType(
    {
        "Qwen/Qwen2.5-Coder-32B-Instruct": QWEN25_CODER_32B,
        "Qwen/Qwen2.5-Coder-32B-Instruct-AWQ": QWEN25_CODER_32B,
        "Qwen/Qwen2.5-Coder-14B-Instruct": QWEN25_CODER_14B,
        "Qwen/Qwen2.5-Coder-14B-Instruct-AWQ": QWEN25_CODER_14B,
    }
)

# ------------------------------------------------------------------------------------------- GPUs


@dataclass(frozen=True)
class GpuSpec:
    """One Modal GPU type: what vLLM can allocate on it, how fast it reads weights, what it costs."""

    #: Modal's name for it, as in `@app.function(gpu=...)`.
    name: str
    #: Total device memory as the driver reports it (nvidia-smi / torch.cuda.mem_get_info, ECC on):
    #: the number vLLM multiplies by gpu_memory_utilization. Slightly above the vendor's "48 GB" etc.
    memory_bytes: int
    #: Vendor memory bandwidth: decoding one token reads every weight once, so this bounds speed.
    bandwidth_bytes_s: float
    #: (major, minor). W8A8 FP8 needs 8.9 (Ada, Hopper); Ampere's 8.0 has no FP8 tensor cores.
    compute_capability: tuple[int, int]
    #: $/hour the seed plan budgeted with.
    price_seed_per_hour: float | None
    #: Modal's list price per hour (modal.com/pricing as quoted by third-party pages in May/June 2026).
    price_list_per_hour: float | None

    @property
    def memory_gb(self) -> float:
        return self.memory_bytes / GB


GPUS: Mapping[str, GpuSpec] = MappingProxyType(
    {
        gpu.name: gpu
        for gpu in (
            GpuSpec("L4", 23034 * MiB, 300e9, (8, 9), price_seed_per_hour=0.60, price_list_per_hour=0.80),
            GpuSpec("L40S", 46068 * MiB, 864e9, (8, 9), price_seed_per_hour=1.20, price_list_per_hour=1.95),
            GpuSpec("A100-80GB", 81920 * MiB, 2.0e12, (8, 0), price_seed_per_hour=4.00, price_list_per_hour=2.50),
            GpuSpec("H100", 81559 * MiB, 3.35e12, (9, 0), price_seed_per_hour=None, price_list_per_hour=3.95),
        )
    }
)

# -------------------------------------------------------------------------------- weight formats

#: AWQ (Qwen's official -AWQ repos): 4-bit weights plus, per group of 128, an FP16 scale and a packed
#: 4-bit zero point = 0.5 + 2.5/128 bytes per linear parameter. Embeddings and LM head stay FP16.
AWQ_BYTES_PER_PARAM = 0.5 + 2.5 / 128


def weight_format(quantization: str | None) -> str:
    """The storage format vLLM ends up with for a `--quantization` value: "bf16", "fp8" or "awq"."""
    if quantization is None:
        return "bf16"
    if quantization.startswith("fp8"):
        return "fp8"
    if "awq" in quantization:
        return "awq"
    raise ValueError(f"no weight-size rule for --quantization {quantization!r}")


def weight_bytes(model: ModelSpec, quantization: str | None) -> float:
    """Bytes of weights on the GPU after loading.

    FP8 online quantization (vLLM 0.32 `fp8_per_tensor`) converts only the linear layers, one at a
    time as they load (weights start on the meta device), so the BF16 checkpoint never sits whole on
    the GPU: the peak is the FP8 model plus one layer.
    """
    fmt = weight_format(quantization)
    if fmt == "bf16":
        return model.params * 2
    per_param = 1.0 if fmt == "fp8" else AWQ_BYTES_PER_PARAM
    return model.linear_params * per_param + model.embedding_params * 2


def checkpoint_bytes(model: ModelSpec, quantization: str | None) -> float:
    """Bytes vLLM reads from disk: the BF16 checkpoint for BF16 and online FP8, the 4-bit one for AWQ."""
    return model.params * 2 if weight_format(quantization) != "awq" else weight_bytes(model, quantization)


# ------------------------------------------------------------------------------------ overheads

#: CUDA context, cuBLAS workspaces and other allocations outside PyTorch's pool. vLLM counts them
#: against gpu_memory_utilization ("non-torch memory" in its start-up log, ~0.5-1 GiB on one GPU).
NON_TORCH_BYTES = 1.0 * GB
#: CUDA graphs captured for decode batch sizes (vLLM logs a few hundred MiB for dense 14-32B models);
#: zero with --enforce-eager.
CUDA_GRAPH_BYTES = 1.0 * GB
#: NCCL / custom all-reduce buffers of each GPU with tensor parallelism (counted as non-torch memory).
TP_COMM_BYTES = 0.5 * GB
#: vLLM's per-step token budget when a profile does not set --max-num-batched-tokens (the larger of
#: its GPU-dependent defaults, so the estimate errs high).
DEFAULT_MAX_NUM_BATCHED_TOKENS = 8192


def activation_bytes(model: ModelSpec, batched_tokens: int, max_num_seqs: int, tensor_parallel: int = 1) -> float:
    """Peak activation memory of one forward step on one GPU, as vLLM's profiling run measures it.

    The widest live tensors are the MLP's gate/up output (2 x intermediate) plus the activated half
    (intermediate), split across GPUs with tensor parallelism, and a few hidden-size buffers
    (residual, attention in/out), all BF16; then the FP32 logits of the sampled rows (one per
    sequence, gathered whole) and a sampler copy of them.
    """
    per_token = (3 * model.intermediate_size // tensor_parallel + 4 * model.hidden_size) * 2
    logits = max_num_seqs * model.vocab_size * 4 * 2
    return batched_tokens * per_token + logits


def flag_value(args: tuple[str, ...], flag: str) -> str | None:
    """Value of `flag` in an argv fragment, written `--flag value` or `--flag=value`."""
    for index, arg in enumerate(args):
        if arg == flag and index + 1 < len(args):
            return args[index + 1]
        if arg.startswith(flag + "="):
            return arg.split("=", 1)[1]
    return None


# ------------------------------------------------------------------------------------------ fit


@dataclass(frozen=True)
class Fit:
    """The memory budget of one profile on ONE of its GPUs, term by term (bytes), and why it fails if it does."""

    profile: str
    model: ModelSpec
    gpu: GpuSpec
    #: GPUs the model is split over (`--tensor-parallel-size`).
    gpus: int
    max_model_len: int
    #: Weights on each GPU (1/gpus of the model).
    weights: float
    #: KV cache of one max_model_len sequence on each GPU: vLLM's start-up requirement.
    kv_cache: float
    activations: float
    overhead: float
    budget: float
    #: KV bytes one token takes on each GPU (its share of the KV heads).
    kv_bytes_per_token: int
    problems: tuple[str, ...]

    @property
    def required(self) -> float:
        return self.weights + self.kv_cache + self.activations + self.overhead

    @property
    def headroom(self) -> float:
        """Budget left after vLLM's start-up requirement; vLLM gives it to the KV cache as well."""
        return self.budget - self.required

    @property
    def fits(self) -> bool:
        return not self.problems

    @property
    def kv_capacity_tokens(self) -> int:
        """Tokens of KV cache vLLM will actually allocate: everything the budget leaves after weights."""
        free = self.budget - self.weights - self.activations - self.overhead
        return max(0, int(free // self.kv_bytes_per_token))

    @property
    def full_length_seqs(self) -> int:
        """Sequences of max_model_len tokens that fit in the KV pool at once; one more means preemption."""
        return self.kv_capacity_tokens // self.max_model_len

    @property
    def total_weights(self) -> float:
        """Weights of the whole model, summed over its GPUs."""
        return self.weights * self.gpus

    @property
    def decode_ceiling_tok_s(self) -> float:
        """Single-stream decode upper bound: each GPU reads its share of the weights once per token."""
        return self.gpu.bandwidth_bytes_s / self.weights

    def summary(self) -> str:
        """One line of arithmetic, e.g. for an assertion message or the docs table."""
        per = " per GPU" if self.gpus > 1 else ""
        return (
            f"{self.profile}: {self.weights / GB:.1f} weights + {self.kv_cache / GB:.1f} KV (one "
            f"{self.max_model_len}-token sequence) + {self.activations / GB:.1f} act + "
            f"{self.overhead / GB:.1f} overhead = {self.required / GB:.1f} GB vs {self.budget / GB:.1f} GB budget"
            f"{per} ({self.headroom / GB:+.1f}); KV pool {self.kv_capacity_tokens:,} tokens"
        )


def fit(profile: Profile) -> Fit:
    """Recompute the memory budget of a GPU profile from the published model and GPU specs."""
    if profile.gpu is None or profile.model is None:
        raise ValueError(f"profile {profile.name!r} has no GPU or no model id: nothing to fit")
    if profile.gpu_memory_utilization is None or profile.max_num_seqs is None:
        raise ValueError(f"profile {profile.name!r} must set gpu_memory_utilization and max_num_seqs")
    try:
        model = MODELS[profile.model]
    except KeyError:
        raise ValueError(f"no published config recorded for {profile.model!r}; add it to app.fit.MODELS") from None
    try:
        gpu = GPUS[profile.gpu]
    except KeyError:
        raise ValueError(f"no spec recorded for GPU {profile.gpu!r}; add it to app.fit.GPUS") from None

    tp = profile.tensor_parallel_size
    batched = int(flag_value(profile.extra_args, "--max-num-batched-tokens") or DEFAULT_MAX_NUM_BATCHED_TOKENS)
    eager = "--enforce-eager" in profile.extra_args
    per_token = model.kv_bytes_per_token() // tp
    result = Fit(
        profile=profile.name,
        model=model,
        gpu=gpu,
        gpus=tp,
        max_model_len=profile.max_model_len,
        weights=weight_bytes(model, profile.quantization) / tp,
        kv_cache=float(per_token * profile.max_model_len),
        activations=activation_bytes(model, batched, profile.max_num_seqs, tp),
        overhead=NON_TORCH_BYTES + (0.0 if eager else CUDA_GRAPH_BYTES) + (TP_COMM_BYTES if tp > 1 else 0.0),
        budget=profile.gpu_memory_utilization * gpu.memory_bytes,
        kv_bytes_per_token=per_token,
        problems=(),
    )
    problems = []
    if result.headroom < 0:
        problems.append(
            f"needs {result.required / GB:.1f} GB (one {profile.max_model_len}-token sequence of KV included) "
            f"but the budget is {result.budget / GB:.1f} GB"
        )
    if weight_format(profile.quantization) == "fp8" and gpu.compute_capability < (8, 9):
        problems.append(f"FP8 needs compute capability 8.9+; {gpu.name} has {gpu.compute_capability}")
    if model.kv_heads % tp:
        problems.append(f"{model.kv_heads} KV heads cannot be split over {tp} GPUs")
    return dataclasses.replace(result, problems=tuple(problems))
