"""Errors raised by `app/`, one tree so callers can catch at the right depth.

    AppError
     ├── ConfigError (also ValueError)       bad input from a person: the CLI prints one line, exits 2
     │    ├── UnknownProfileError            --profile names no profile
     │    ├── ProfileArgsError               a profile's extra_args set a flag build_vllm_argv owns
     │    ├── ModelNotFoundError             --model is neither a directory nor an HF id
     │    └── PortInUseError                 the gateway or vLLM port is already taken
     ├── GatewayError                        uvicorn could not start the gateway: exit 1
     └── VllmError                           the vLLM child misbehaved: exit 1
          ├── VllmStartError                 exited, or not healthy by the deadline (carries the log tail)
          └── VllmCrashedError               kept crashing after it had been healthy; restarts exhausted

Foreign errors (OSError from Popen, httpx errors while polling) are translated into these at one
place each, so the CLI needs exactly two `except` clauses.
"""

from __future__ import annotations


class AppError(Exception):
    """Root of everything `app/` raises on purpose."""


class ConfigError(AppError, ValueError):
    """The request itself is wrong; retrying will not help, so the CLI exits 2 without a traceback."""


class UnknownProfileError(ConfigError):
    """Raised by `get_profile`; the message lists the valid names so the fix is one copy-paste."""


class ProfileArgsError(ConfigError):
    """A profile tried to set a flag that `build_vllm_argv` owns.

    vLLM's argument parser only *warns* on duplicate flags and keeps the last one, so a stray
    `--structured-outputs-config.backend auto` in a profile would silently undo guidance.
    """


class ModelNotFoundError(ConfigError):
    """The model argument is neither an existing directory nor something that looks like an HF id."""


class PortInUseError(ConfigError):
    """Detected before starting anything, so a taken port never costs a 30 s vLLM start."""


class GatewayError(AppError):
    """The in-process gateway (uvicorn) failed to start, e.g. its lifespan raised."""


class VllmError(AppError):
    """The vLLM child process failed; the message says how and, where possible, shows its log."""


class VllmStartError(VllmError):
    """vLLM exited before it became healthy, or the startup deadline passed.

    `log_tail` holds the last lines of vLLM's log (empty when its output went to the terminal),
    because the reason ("CUDA out of memory", "unrecognized arguments") is always at the end.
    """

    def __init__(self, message: str, *, log_tail: str = "", returncode: int | None = None) -> None:
        self.log_tail = log_tail
        self.returncode = returncode
        full = f"{message}\n--- last lines of the vLLM log ---\n{log_tail}" if log_tail else message
        super().__init__(full)


class VllmCrashedError(VllmError):
    """vLLM had been healthy, then exited more often than the restart policy allows."""
