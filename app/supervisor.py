"""Run the pair: vLLM as a supervised child, the gateway in-process with uvicorn.

Order matters for cold starts. vLLM is started first and the gateway starts listening right away,
without waiting for vLLM: `/health` answers at once and inference requests can wait or get a 503
while the model loads (the gateway's `/ready` probes vLLM's `/health` itself). Modal's
`@web_server` sees the port open in seconds instead of after the model load.

Supervision: if vLLM exits after it had been healthy, it is restarted with exponential backoff,
at most `RestartPolicy.max_restarts` times per `window_s`; beyond that the gateway is stopped and
`serve` returns 1. If vLLM never became healthy, its first failure is final: a bad flag or a
missing model fails the same way on every retry, so retrying only hides the error.

Shutdown (SIGINT, SIGTERM, SIGHUP, or either side failing): stop uvicorn gracefully (in-flight
requests get `stop_grace_s`; streams still running a second before that end with an SSE error
event), then stop vLLM's whole process group (see process.py), then return. A second signal
SIGKILLs vLLM at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shlex
import signal
import sys
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import uvicorn

from app.errors import ConfigError, GatewayError, VllmCrashedError, VllmStartError
from app.ports import ensure_port_free
from app.process import VllmProcess
from app.profiles import Profile
from app.vllm_argv import build_vllm_argv, vllm_env

logger = logging.getLogger("app.supervisor")

#: vLLM is only ever reachable from inside the container/machine; the gateway is the front door.
UPSTREAM_HOST = "127.0.0.1"

#: SIGHUP too: vLLM runs in its own session, so closing the terminal would not reach it directly.
SHUTDOWN_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


@dataclass(frozen=True)
class RestartPolicy:
    """How hard to try when vLLM dies after it had been healthy."""

    max_restarts: int = 5
    window_s: float = 600.0
    backoff_initial_s: float = 2.0
    backoff_max_s: float = 60.0

    def backoff_s(self, restart_number: int) -> float:
        """Delay before restart number `restart_number` (1-based): 2, 4, 8, ... capped."""
        return min(self.backoff_max_s, self.backoff_initial_s * 2.0 ** (restart_number - 1))


@dataclass(frozen=True)
class ServeConfig:
    """Everything `serve` needs, built once by the CLI (or modal_deploy.py) and passed down."""

    profile: Profile
    model: str
    host: str = "127.0.0.1"
    port: int = 8000
    upstream_port: int = 8001
    served_model_name: str | None = None
    #: None: vLLM's output goes to our stdout/stderr. A directory: appended to DIR/vllm.log.
    log_dir: Path | None = None
    restart: RestartPolicy = field(default_factory=RestartPolicy)
    stop_grace_s: float = 10.0
    #: Interpreter that runs vLLM ("module" launcher) or whose directory holds `vllm` ("cli").
    #: Lets vLLM live in its own virtualenv; tests point it at a fake vLLM script.
    python: str = sys.executable

    @property
    def upstream_url(self) -> str:
        """Base URL of vLLM's OpenAI server, as the gateway's `upstream_url` setting wants it."""
        return f"http://{UPSTREAM_HOST}:{self.upstream_port}"

    @property
    def model_name(self) -> str:
        """The name clients send as `model`; vLLM's own default is the model path or id."""
        return self.served_model_name or self.model


#: Builds the ASGI app to serve. The default builds the gateway; tests inject a stub.
AppFactory = Callable[[ServeConfig], Any]


def gateway_app_factory(config: ServeConfig) -> Any:
    """The real gateway, configured to proxy to our vLLM. Other settings come from MAZE_* env vars."""
    from gateway import Settings, create_app  # imported late: `app` must import without the gateway

    try:
        settings = Settings(
            upstream_url=config.upstream_url,
            served_model_name=config.model_name,
            host=config.host,
            port=config.port,
        )
        return create_app(settings)
    except ValueError as exc:  # pydantic ValidationError, InsecureConfigError: bad MAZE_* settings
        raise ConfigError(f"gateway settings: {' '.join(str(exc).split())}") from exc


async def serve(config: ServeConfig, *, app_factory: AppFactory = gateway_app_factory) -> int:
    """Run gateway + vLLM until a signal (returns 0) or an unrecoverable failure (returns 1).

    Raises PortInUseError (a ConfigError) before starting anything if a port is taken.
    """
    return await _Supervisor(config, app_factory).run()


class _Supervisor:
    """State of one `serve` call: the current vLLM process and the shutdown flag."""

    def __init__(self, config: ServeConfig, app_factory: AppFactory) -> None:
        self.config = config
        self.app_factory = app_factory
        self.process: VllmProcess | None = None
        self.app: Any = None
        self.stopping = asyncio.Event()
        self.signals_seen = 0

    async def run(self) -> int:
        config = self.config
        ensure_port_free(config.host, config.port)
        ensure_port_free(UPSTREAM_HOST, config.upstream_port)
        # Build the app before vLLM starts: a gateway configuration error should cost nothing.
        self.app = self.app_factory(config)
        server = _GatewayServer(
            uvicorn.Config(
                self.app,
                host=config.host,
                port=config.port,
                lifespan="auto",
                timeout_graceful_shutdown=int(config.stop_grace_s),
            )
        )
        loop = asyncio.get_running_loop()
        # Installed before vLLM starts, so no signal can arrive while a child exists unsupervised.
        previous = {sig: signal.getsignal(sig) for sig in SHUTDOWN_SIGNALS}
        for sig in SHUTDOWN_SIGNALS:
            loop.add_signal_handler(sig, self._on_signal, sig)
        try:
            return await self._run_both(server)
        finally:
            await self._stop_vllm()
            for sig, handler in previous.items():
                loop.remove_signal_handler(sig)
                if handler is not None:  # remove_signal_handler would leave SIG_DFL behind
                    signal.signal(sig, handler)

    async def _run_both(self, server: uvicorn.Server) -> int:
        """Start both sides, wait for the first to end (or a signal), then stop the other."""
        vllm_task = asyncio.create_task(self._supervise_vllm(), name="vllm")
        server_task = asyncio.create_task(_serve_gateway(server), name="gateway")
        stop_task = asyncio.create_task(self.stopping.wait(), name="signals")
        done, _ = await asyncio.wait({vllm_task, server_task, stop_task}, return_when=asyncio.FIRST_COMPLETED)
        exit_code = 0
        if vllm_task in done:
            exit_code = 1
            logger.error("stopping the gateway because vLLM failed: %s", _describe(vllm_task))
        elif server_task in done and not self.stopping.is_set():
            # uvicorn's signal handling is off, so it only ends by itself on failure (e.g. the
            # app's lifespan startup raised; uvicorn then returns quietly instead of raising).
            exit_code = 1
            logger.error("the gateway stopped unexpectedly: %s", _describe(server_task))
        drain_task = self._drain_requests()
        server.should_exit = True
        for task in (vllm_task, stop_task):
            task.cancel()
        await asyncio.gather(server_task, vllm_task, stop_task, return_exceptions=True)
        if drain_task is not None:
            drain_task.cancel()
        return exit_code

    def _drain_requests(self) -> asyncio.Task[None] | None:
        """Let in-flight requests run for most of the grace period, then end them with an answer.

        uvicorn cancels whatever is left when ``timeout_graceful_shutdown`` runs out, which cuts a
        stream mid-chunk and closes a waiting request's connection without a response; the gateway's
        drain (``gateway/drain.py``) ends them a second earlier, streams with an SSE error event and
        waiting requests with 503 + ``Retry-After``. An app without one (a test stub) is left to uvicorn.
        """
        drain = getattr(getattr(self.app, "state", None), "drain", None)
        if drain is None:
            return None
        return asyncio.create_task(drain.expire_after(max(0.0, self.config.stop_grace_s - 1.0)), name="drain")

    async def _supervise_vllm(self) -> None:
        """Start vLLM, wait until healthy, restart it when it dies. Returns only by raising."""
        config = self.config
        argv = build_vllm_argv(
            config.profile,
            model=config.model,
            host=UPSTREAM_HOST,
            port=config.upstream_port,
            served_model_name=config.model_name,
            python=config.python,
        )
        env = vllm_env(config.profile)
        log_path = config.log_dir / "vllm.log" if config.log_dir is not None else None
        health_url = f"{config.upstream_url}/health"
        restarts: deque[float] = deque()
        ever_ready = False
        while True:
            self.process = VllmProcess(argv, env=env, log_path=log_path)
            self.process.start()
            logger.info("started vLLM (pid %s): %s", self.process.pid, shlex.join(argv))
            if log_path is not None:
                logger.info("vLLM log: %s", log_path)
            try:
                took = await self.process.wait_ready(
                    health_url, deadline_s=config.profile.startup_timeout_s, progress=logger.info
                )
            except VllmStartError as exc:
                if not ever_ready:
                    raise
                logger.error("vLLM failed to come back: %s", exc)
            else:
                ever_ready = True
                logger.info("vLLM healthy after %.1f s on %s", took, config.upstream_url)
                code = await self.process.wait()
                logger.error("vLLM exited unexpectedly with code %s", code)
            await self._stop_vllm()  # the API server may be gone while its EngineCore lives on
            restarts.append(time.monotonic())
            while restarts and restarts[0] < time.monotonic() - config.restart.window_s:
                restarts.popleft()
            if len(restarts) > config.restart.max_restarts:
                raise VllmCrashedError(
                    f"vLLM exited {len(restarts)} times within {config.restart.window_s:.0f} s; giving up"
                )
            delay = config.restart.backoff_s(len(restarts))
            logger.warning(
                "restarting vLLM in %.1f s (restart %d of at most %d per %.0f s)",
                delay,
                len(restarts),
                config.restart.max_restarts,
                config.restart.window_s,
            )
            await asyncio.sleep(delay)

    async def _stop_vllm(self) -> None:
        """Stop the current vLLM group in a worker thread, so signals are still handled meanwhile."""
        process = self.process
        if process is not None and process.started:
            code = await asyncio.to_thread(process.stop, self.config.stop_grace_s)
            logger.info("vLLM (pid %s) stopped, exit code %s", process.pid, code)
        if self.process is process:
            self.process = None  # stays set while stopping, so a second signal can still kill it

    def _on_signal(self, sig: signal.Signals) -> None:
        self.signals_seen += 1
        if self.signals_seen == 1:
            logger.info("received %s, shutting down", sig.name)
            self.stopping.set()
        elif self.process is not None:
            logger.warning("received %s again, killing vLLM now", sig.name)
            self.process.kill()


class _GatewayServer(uvicorn.Server):
    """uvicorn minus its signal handling: the supervisor owns signals for both processes.

    uvicorn's own handlers would end the gateway on SIGINT and then re-raise the signal once it has
    stopped, which the supervisor would count as a second Ctrl-C and SIGKILL vLLM instead of
    stopping it gracefully. tests/app/test_supervisor.py checks this hook still exists.
    """

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


async def _serve_gateway(server: uvicorn.Server) -> None:
    """Run uvicorn, turning its sys.exit(1) (cannot bind, lifespan failed) into a GatewayError.

    A SystemExit escaping a task would stop the event loop before vLLM is cleaned up.
    """
    try:
        await server.serve()
    except SystemExit as exc:
        raise GatewayError(f"the gateway failed to start (uvicorn exit code {exc.code})") from None


def _describe(task: asyncio.Task[Any]) -> str:
    """One line saying how a finished task ended (its exception message, if any)."""
    if task.cancelled():
        return f"{task.get_name()} was cancelled"
    exc = task.exception()
    if exc is None:
        return f"{task.get_name()} ended (see its log above)"
    return str(exc) or type(exc).__name__
