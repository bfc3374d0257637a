"""maze-inference process layer: profiles, vLLM's argv, the vLLM child process and its supervisor.

Only the light, pure modules are re-exported here, so `modal_deploy.py` can read profiles on a
laptop without httpx, psutil, uvicorn or torch installed. Import the rest from their modules:

    app.process      VllmProcess (start / wait_ready / stop the vLLM process group)
    app.supervisor   serve(ServeConfig) - gateway + supervised vLLM, what `python -m app serve` runs
    app.tiny_model   build_tiny_model(dir) - tiny random Qwen2 for CPU tests (needs torch)
    app.settings     AppSettings - what `python -m app` reads from the environment (MAZE_*)
    app.cli          python -m app
"""

from app.errors import (
    AppError,
    ConfigError,
    GatewayError,
    ModelNotFoundError,
    PortInUseError,
    ProfileArgsError,
    UnknownProfileError,
    VllmCrashedError,
    VllmError,
    VllmStartError,
)
from app.profiles import DEFAULT_PROFILE, PROFILES, Profile, get_profile
from app.vllm_argv import build_vllm_argv, vllm_env

__all__ = [
    "DEFAULT_PROFILE",
    "PROFILES",
    "AppError",
    "ConfigError",
    "GatewayError",
    "ModelNotFoundError",
    "PortInUseError",
    "Profile",
    "ProfileArgsError",
    "UnknownProfileError",
    "VllmCrashedError",
    "VllmError",
    "VllmStartError",
    "build_vllm_argv",
    "get_profile",
    "vllm_env",
]
