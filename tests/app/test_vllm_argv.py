"""build_vllm_argv / vllm_env: the one place vLLM's command line is made."""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path
from typing import Any

import pytest

from app.errors import ProfileArgsError
from app.profiles import CPU_TINY
from app.vllm_argv import MODULE_ENTRYPOINT, build_vllm_argv, vllm_env
from tests.app.fakes import GPU_PROFILE as GPU


def value_of(argv: list[str], flag: str) -> str:
    """Value of `flag` whether written `--flag value` or `--flag=value`."""
    for i, arg in enumerate(argv):
        if arg == flag:
            return argv[i + 1]
        if arg.startswith(flag + "="):
            return arg.split("=", 1)[1]
    raise AssertionError(f"{flag} not in {argv}")


def test_cpu_tiny_uses_the_module_launcher_and_the_guidance_backend() -> None:
    argv = build_vllm_argv(CPU_TINY, model="/models/tiny", python="/venv/bin/python")
    assert argv[:5] == ["/venv/bin/python", "-m", MODULE_ENTRYPOINT, "--model", "/models/tiny"]
    assert value_of(argv, "--structured-outputs-config.backend") == "guidance"
    assert not any("auto" in arg for arg in argv)
    assert value_of(argv, "--host") == "127.0.0.1"
    assert value_of(argv, "--port") == "8001"
    assert value_of(argv, "--served-model-name") == "/models/tiny"  # vLLM's own default, made explicit
    assert value_of(argv, "--max-model-len") == "4096"
    assert "--disable-uvicorn-access-log" in argv
    assert argv[-3:] == ["--kv-cache-memory-bytes", "128M", "--enforce-eager"]
    for absent in ("--quantization", "--gpu-memory-utilization", "--max-num-seqs", "--api-key"):
        assert not any(arg.split("=")[0] == absent for arg in argv)


def test_default_python_is_this_interpreter() -> None:
    assert build_vllm_argv(CPU_TINY, model="m")[0] == sys.executable


def test_gpu_profile_uses_vllm_serve_next_to_the_interpreter_and_sets_its_knobs() -> None:
    argv = build_vllm_argv(
        GPU, model=GPU.model or "", host="0.0.0.0", port=9000, served_model_name="coder", python="/opt/venv/bin/python3"
    )
    assert argv[:3] == ["/opt/venv/bin/vllm", "serve", "Qwen/Qwen2.5-Coder-32B-Instruct-AWQ"]
    assert "--model" not in argv  # `vllm serve` takes the model positionally
    assert value_of(argv, "--host") == "0.0.0.0"
    assert value_of(argv, "--port") == "9000"
    assert value_of(argv, "--served-model-name") == "coder"
    assert value_of(argv, "--quantization") == "awq_marlin"
    assert value_of(argv, "--gpu-memory-utilization") == "0.92"
    assert value_of(argv, "--max-num-seqs") == "32"
    assert value_of(argv, "--max-model-len") == "16384"
    assert "--enable-prefix-caching" in argv


def test_api_key_is_one_argument_after_everything_else() -> None:
    # `--api-key` takes one or more values: the `=` form keeps a key that starts with "-" a value,
    # and keeps later flags from being swallowed as extra keys.
    argv = build_vllm_argv(CPU_TINY, model="m", api_key="-secret")
    assert argv[-1] == "--api-key=-secret"
    assert argv.count("--api-key=-secret") == 1


@pytest.mark.parametrize(
    "bad",
    [
        ("--structured-outputs-config.backend", "auto"),
        ("--structured_outputs_config.backend=xgrammar",),
        ("--port", "1"),
        ("--api-key", "k"),
        ("--max-model-len=8192",),
        ("-q", "fp8"),
        ("--tensor-parallel-size", "2"),  # the profile's tensor_parallel_size field sets it
    ],
)
def test_profile_cannot_override_flags_the_builder_owns(bad: tuple[str, ...]) -> None:
    profile = dataclasses.replace(CPU_TINY, extra_args=bad)
    with pytest.raises(ProfileArgsError, match="may not set"):
        build_vllm_argv(profile, model="m")


def test_tensor_parallel_flag_only_when_the_profile_splits_the_model() -> None:
    assert "--tensor-parallel-size" not in build_vllm_argv(CPU_TINY, model="m")
    argv = build_vllm_argv(dataclasses.replace(CPU_TINY, tensor_parallel_size=2), model="m")
    assert argv[argv.index("--tensor-parallel-size") + 1] == "2"


def test_vllm_env_layers_the_profile_over_the_base() -> None:
    env = vllm_env(CPU_TINY, base={"PATH": "/bin", "HF_HUB_OFFLINE": "0", "CUSTOM": "x"})
    assert env["PATH"] == "/bin" and env["CUSTOM"] == "x"
    assert env["HF_HUB_OFFLINE"] == "1"  # the profile's requirement wins
    assert env["VLLM_HOST_IP"] == "127.0.0.1"
    assert env["PYTHONUNBUFFERED"] == "1"


def test_vllm_keeps_idle_connections_longer_than_the_gateway() -> None:
    # The side that closes an idle connection must be the gateway, or a request can be sent down a
    # connection vLLM is closing at that instant.
    from gateway import Settings

    env = vllm_env(CPU_TINY, base={})
    assert int(env["VLLM_HTTP_TIMEOUT_KEEP_ALIVE"]) >= 2 * Settings().upstream_keepalive_seconds


@pytest.fixture(scope="module")
def vllm_parser() -> Any:
    """vLLM 0.32's own `api_server` argument parser (importing it takes ~15 s on CPU)."""
    pytest.importorskip("vllm")
    from vllm.entrypoints.launchers.cli_args import make_arg_parser
    from vllm.utils.argparse_utils import FlexibleArgumentParser

    return make_arg_parser(FlexibleArgumentParser())


def test_vllm_itself_parses_our_argv(vllm_parser: Any, tmp_path: Path) -> None:
    # Every flag we emit exists in the installed vLLM and means what we think it means.
    from vllm.entrypoints.launchers.cli_args import validate_parsed_serve_args

    argv = build_vllm_argv(CPU_TINY, model=str(tmp_path), port=8123, served_model_name="tiny", api_key="-k.1")
    args = vllm_parser.parse_args(argv[3:])  # after `python -m MODULE`
    validate_parsed_serve_args(args)
    assert args.model == str(tmp_path)
    assert (args.host, args.port) == ("127.0.0.1", 8123)
    assert args.served_model_name == ["tiny"]
    assert args.max_model_len == 4096
    assert args.structured_outputs_config.backend == "guidance"
    assert args.api_key == ["-k.1"]
    assert args.disable_uvicorn_access_log is True
    assert args.kv_cache_memory_bytes == 128 * 1024 * 1024
    assert args.enforce_eager is True


def test_vllm_itself_parses_a_gpu_argv(vllm_parser: Any) -> None:
    argv = build_vllm_argv(dataclasses.replace(GPU, launcher="module"), model="Qwen/Qwen2.5-Coder-32B-Instruct-AWQ")
    args = vllm_parser.parse_args(argv[3:])
    assert args.served_model_name == ["Qwen/Qwen2.5-Coder-32B-Instruct-AWQ"]
    assert args.quantization == "awq_marlin"
    assert args.gpu_memory_utilization == 0.92
    assert args.max_num_seqs == 32


def test_vllm_env_gives_the_engine_plugin_the_profiles_mask_threads() -> None:
    assert vllm_env(CPU_TINY, base={})["MAZE_MASK_THREADS"] == str(CPU_TINY.mask_threads)
    assert vllm_env(GPU, base={})["MAZE_MASK_THREADS"] == str(GPU.mask_threads)
    # A choice made by whoever starts the service wins over the profile's default.
    assert vllm_env(GPU, base={"MAZE_MASK_THREADS": "3"})["MAZE_MASK_THREADS"] == "3"
