"""LiteLLM's proxy as the reference gateway: its own venv, a config pointing at the fake upstream.

LiteLLM pins its own versions of fastapi, pydantic, openai and more; installed into the project's
environment it would change what the gateway runs on. It lives in a separate venv instead
(``~/.cache/maze-inference/bench-venv``, made on first use with ``pip install 'litellm[proxy]'``).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from .common import Child, pinned, start

VENV_DIR = Path(os.environ.get("MAZE_BENCH_VENV", Path.home() / ".cache" / "maze-inference" / "bench-venv"))
LITELLM = VENV_DIR / "bin" / "litellm"
#: What goes into the venv; the version found there is recorded with the results.
REQUIREMENT = "litellm[proxy]"


def ensure_venv(out=print) -> Path:  # type: ignore[no-untyped-def]
    """The ``litellm`` executable, installing the venv first if it is missing (a few minutes, once)."""
    if LITELLM.exists():
        return LITELLM
    out(f"installing {REQUIREMENT} into {VENV_DIR} (first run only)")
    subprocess.run([sys.executable, "-m", "venv", str(VENV_DIR)], check=True)
    pip = [str(VENV_DIR / "bin" / "python"), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    subprocess.run([*pip, REQUIREMENT], check=True)
    return LITELLM


def version() -> str:
    python = VENV_DIR / "bin" / "python"
    result = subprocess.run(
        [str(python), "-c", "import importlib.metadata as m; print(m.version('litellm'))"],
        capture_output=True,
        text=True,
        check=False,
    )
    return result.stdout.strip() or "unknown"


def config_text(upstream_port: int, model: str) -> str:
    """A minimal proxy config: one model, ``openai/`` provider, the fake upstream as its API base."""
    return f"""model_list:
  - model_name: {model}
    litellm_params:
      model: openai/{model}
      api_base: http://127.0.0.1:{upstream_port}/v1
      api_key: sk-fake
litellm_settings:
  drop_params: true
"""


def start_proxy(port: int, upstream_port: int, model: str, key: str, work_dir: Path, core: int | None) -> Child:
    """``litellm --config`` on ``port``, one worker, master key ``key``, pinned like our gateway."""
    config = work_dir / "litellm.yaml"
    config.write_text(config_text(upstream_port, model))
    argv = [
        str(ensure_venv()),
        "--config",
        str(config),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--num_workers",
        "1",
    ]
    env = {
        "LITELLM_LOG": "ERROR",  # no per-request logging: compare proxies, not log volume
        "LITELLM_LOCAL_MODEL_COST_MAP": "True",  # no network fetch of the price list at start-up
        "LITELLM_TELEMETRY": "False",
        "PYTHONUNBUFFERED": "1",
        "LITELLM_MASTER_KEY": key,
    }
    return start("litellm", pinned(argv, core), work_dir / "litellm.log", env)
