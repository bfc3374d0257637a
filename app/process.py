"""The vLLM child process: start it in its own process group, wait until healthy, stop the whole group.

Why a process group: vLLM's API server forks an EngineCore process (and, on GPU, workers). If only
the API server is killed, those grandchildren survive as orphans holding ~1.2 GB of RAM (or the
whole GPU). `start_new_session=True` makes the API server the leader of a new group that its
descendants inherit, so one `os.killpg` reaches all of them. Descendants that left the group
(setsid) are found with psutil and signalled too; `stop()` returns only when none is left.

This module is sync except for the two waits, which poll, so cancelling them is always safe.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import ctypes
import os
import signal
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import IO

import httpx
import psutil

from app.errors import VllmStartError
from client._ready import Poll, every

#: How many log lines a VllmStartError shows: enough for a Python traceback, short enough to read.
LOG_TAIL_LINES = 40


class VllmProcess:
    """One run of vLLM (or any server-like child). Restarting means creating a new instance."""

    def __init__(
        self,
        argv: Sequence[str],
        *,
        env: Mapping[str, str] | None = None,
        log_path: Path | None = None,
        cwd: Path | None = None,
    ) -> None:
        """`log_path` None means the child writes to our stdout/stderr (what Modal's log view wants);
        with a path its output is appended there and error messages can quote its tail."""
        self.argv = list(argv)
        self.env = dict(env) if env is not None else None
        self.log_path = log_path
        self.cwd = cwd
        self._popen: subprocess.Popen[bytes] | None = None
        self._log_file: IO[bytes] | None = None
        self._pgid: int | None = None
        self._stopped = False
        # stop() runs in a worker thread under asyncio; a second caller must wait for the first
        # to finish, not return while the group is still dying.
        self._stop_lock = threading.Lock()

    # -- lifecycle -------------------------------------------------------------------------------

    def start(self) -> None:
        """Spawn the child as the leader of a new session (hence a new process group)."""
        if self._popen is not None:
            raise RuntimeError("VllmProcess.start() called twice; create a new VllmProcess to restart")
        stdout: IO[bytes] | None = None
        if self.log_path is not None:
            self.log_path.parent.mkdir(parents=True, exist_ok=True)
            self._log_file = open(self.log_path, "ab")  # noqa: SIM115 - closed in stop()
            stdout = self._log_file
        try:
            self._popen = subprocess.Popen(
                self.argv,
                env=self.env,
                cwd=self.cwd,
                stdin=subprocess.DEVNULL,
                stdout=stdout,
                stderr=subprocess.STDOUT if stdout is not None else None,
                start_new_session=True,
                preexec_fn=_terminate_with_parent(),
            )
        except OSError as exc:
            self._close_log()
            raise VllmStartError(f"cannot start {self.argv[0]!r}: {exc}") from exc
        # With start_new_session the child is its group's leader: pgid == pid. Recorded now,
        # because os.getpgid() fails once the leader has exited but its group may live on.
        self._pgid = self._popen.pid
        # Last line of defence for exits that skip our own cleanup (an unhandled exception, a
        # sys.exit deep inside uvicorn). SIGKILL of this process is covered by the death signal.
        atexit.register(self.stop)

    def poll(self) -> int | None:
        """Return the exit code if the child (the group leader) has exited, else None."""
        return self._popen.poll() if self._popen is not None else None

    @property
    def returncode(self) -> int | None:
        """Exit code of the leader once it has exited (negative = killed by that signal)."""
        return self.poll()

    @property
    def pid(self) -> int | None:
        """PID of the leader (vLLM's API server), None before start()."""
        return self._popen.pid if self._popen is not None else None

    @property
    def pgid(self) -> int | None:
        """Process group id shared by the leader and its descendants, None before start()."""
        return self._pgid

    @property
    def started(self) -> bool:
        """True once start() has spawned the child (even if it has exited since)."""
        return self._popen is not None

    async def wait(self, poll_interval_s: float = 0.2) -> int:
        """Wait until the leader exits and return its exit code; safe to cancel."""
        while (code := self.poll()) is None:
            await asyncio.sleep(poll_interval_s)
        return code

    async def wait_ready(
        self,
        url: str,
        *,
        deadline_s: float,
        progress: Callable[[str], None] | None = None,
        poll_interval_s: float = 1.0,
        progress_every_s: float = 5.0,
    ) -> float:
        """Poll `url` (vLLM's /health) until it answers 200; return the seconds it took.

        Raises VllmStartError with the log tail if the child exits first or `deadline_s` passes.
        `progress` gets a readable line every `progress_every_s`, because a 30 s (CPU) to
        10 min (GPU) silence looks exactly like a hang.
        """
        if self._popen is None:
            raise RuntimeError("wait_ready() before start()")

        def report(elapsed: float, state: str) -> None:
            if progress is not None:
                progress(f"waiting for vLLM on {_origin(url)} ({elapsed:.0f} s, {state})")

        def timed_out(elapsed: float, state: str) -> VllmStartError:
            return self._start_error(f"vLLM did not become healthy at {url} within {deadline_s:.0f} s ({state})")

        poll = Poll(
            lambda state: state == "ready", deadline_s, poll_interval_s, timed_out, every(progress_every_s, report)
        )
        # Short timeout: vLLM binds its port before the engine is up, so during loading a
        # connection is accepted and then not answered; that means "loading", not "dead".
        timeout = httpx.Timeout(max(poll_interval_s, 0.5))
        async with httpx.AsyncClient(timeout=timeout, trust_env=False) as client:
            return await poll.arun(lambda: self._health(client, url))

    def stop(self, grace_s: float = 10.0) -> int | None:
        """SIGTERM the whole group, wait up to `grace_s`, then SIGKILL whatever is left.

        Returns the leader's exit code. Idempotent: later calls return at once. Returns only when
        no process of the group (or descendant that escaped it) is alive; zombies do not count,
        since they hold no memory and are reaped by init.
        """
        with self._stop_lock:
            if self._popen is None or self._stopped:
                return self.poll()
            self._stopped = True
            try:
                stragglers = self._descendants(self._popen.pid)
                self._signal_all(signal.SIGTERM, stragglers)
                if not self._wait_gone(stragglers, timeout_s=grace_s):
                    self._signal_all(signal.SIGKILL, stragglers)
                    self._wait_gone(stragglers, timeout_s=5.0)
                try:
                    return self._popen.wait(timeout=5.0)
                except subprocess.TimeoutExpired:  # stuck in uninterruptible I/O; nothing left to send
                    return None
            finally:
                atexit.unregister(self.stop)
                self._close_log()

    def kill(self) -> None:
        """SIGKILL the group now, e.g. on a second Ctrl-C while stop() is still being polite."""
        if self._popen is not None:
            self._signal_all(signal.SIGKILL, self._descendants(self._popen.pid))

    def survivors(self) -> list[psutil.Process]:
        """Live (non-zombie) processes still in this child's group: what stop() must leave empty."""
        if self._pgid is None:
            return []
        return [p for p in _group_members(self._pgid) if _alive(p)]

    def log_tail(self, lines: int = LOG_TAIL_LINES) -> str:
        """Last `lines` lines of the log file, or "" when output goes to the terminal."""
        if self.log_path is None or not self.log_path.exists():
            return ""
        with open(self.log_path, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            fh.seek(max(0, fh.tell() - 64 * 1024))  # the tail lives in the last 64 KiB
            tail = deque(fh.read().decode("utf-8", "replace").splitlines(), maxlen=lines)
        return "\n".join(tail)

    def __enter__(self) -> VllmProcess:
        if self._popen is None:
            self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- internals -------------------------------------------------------------------------------

    def _descendants(self, leader_pid: int) -> list[psutil.Process]:
        """Everything started by the child `leader_pid`: its group plus descendants that changed group."""
        found: dict[int, psutil.Process] = {}
        if self._pgid is not None:
            found.update((p.pid, p) for p in _group_members(self._pgid))
        try:
            leader = psutil.Process(leader_pid)
            found.setdefault(leader.pid, leader)
            found.update((p.pid, p) for p in leader.children(recursive=True))
        except psutil.Error:
            pass
        return list(found.values())

    def _signal_all(self, sig: signal.Signals, procs: list[psutil.Process]) -> None:
        """Signal the group in one syscall, then any descendant outside it individually."""
        if self._pgid is not None:
            with contextlib.suppress(ProcessLookupError, PermissionError):  # group already empty
                os.killpg(self._pgid, sig)
        for proc in procs:
            try:
                # psutil checks the pid was not reused by an unrelated process before signalling.
                if _pgid_of(proc.pid) != self._pgid:
                    proc.send_signal(sig)
            except psutil.Error:
                pass

    def _wait_gone(self, procs: list[psutil.Process], *, timeout_s: float) -> bool:
        """Wait until the leader is reaped and every process in `procs` and the group is gone."""
        deadline = time.monotonic() + timeout_s
        while True:
            self.poll()  # reap the leader so it does not linger as our zombie
            if not any(_alive(p) for p in procs) and not self.survivors():
                return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.05)

    async def _health(self, client: httpx.AsyncClient, url: str) -> str:
        """One health check while starting; a child that has exited ends the wait with its log tail."""
        code = self.poll()
        if code is not None:
            raise self._start_error(f"vLLM exited with code {code} before it became healthy")
        return await _probe(client, url)

    def _start_error(self, message: str) -> VllmStartError:
        tail = self.log_tail()
        if not tail and self.log_path is None:
            message += " (its output is above)"
        return VllmStartError(message, log_tail=tail, returncode=self.poll())

    def _close_log(self) -> None:
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None


#: prctl option that makes Linux signal a process when the thread that forked it dies.
_PR_SET_PDEATHSIG = 1


def _terminate_with_parent() -> Callable[[], None] | None:
    """A pre-exec hook giving the child SIGTERM when we die, even by SIGKILL (Linux only).

    vLLM runs in its own session, so nothing else would reach it if the supervisor were killed
    outright; on SIGTERM vLLM's API server shuts its EngineCore down itself. The signal follows the
    *thread* that started the child, which is the supervisor's event-loop thread for the whole run.
    """
    if not sys.platform.startswith("linux"):
        return None
    libc = ctypes.CDLL(None, use_errno=True)  # loaded before fork: the hook itself must not import
    parent = os.getpid()

    def hook() -> None:
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
        if os.getppid() != parent:  # the parent died before prctl took effect
            os.kill(os.getpid(), signal.SIGTERM)

    return hook


async def _probe(client: httpx.AsyncClient, url: str) -> str:
    """One health check, as a word for the progress line: ready / still loading / starting / HTTP n."""
    try:
        response = await client.get(url)
    except httpx.ConnectError:
        return "starting"  # nothing listening yet: Python is still importing vLLM
    except httpx.TimeoutException:
        return "still loading"
    except httpx.HTTPError as exc:
        return f"not answering: {type(exc).__name__}"
    if response.status_code == 200:
        return "ready"
    return f"still loading, HTTP {response.status_code}"


def _origin(url: str) -> str:
    """'http://127.0.0.1:8001/health' -> 'http://127.0.0.1:8001' for the progress line."""
    parsed = httpx.URL(url)
    return f"{parsed.scheme}://{parsed.netloc.decode()}"


def _group_members(pgid: int) -> list[psutil.Process]:
    """All processes whose process group is `pgid` (psutil has no pgid accessor; os does)."""
    members = []
    for proc in psutil.process_iter():
        if _pgid_of(proc.pid) == pgid:
            members.append(proc)
    return members


def _pgid_of(pid: int) -> int | None:
    try:
        return os.getpgid(pid)
    except (ProcessLookupError, PermissionError):
        return None


def _alive(proc: psutil.Process) -> bool:
    try:
        return proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False
