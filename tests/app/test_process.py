"""VllmProcess without vLLM: process-group shutdown, exit detection, start failures, health waits."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import psutil
import pytest

from app.errors import VllmStartError
from app.ports import free_port
from app.process import VllmProcess
from tests.app.fakes import FAKE_VLLM_SCRIPT, TREE_SCRIPT, write_script


def start_tree(tmp_path: Path, mode: str) -> tuple[VllmProcess, list[int]]:
    """Start the fake process tree and return it with [leader, *children] pids once all exist."""
    script = write_script(tmp_path, "tree.py", TREE_SCRIPT)
    pidfile = tmp_path / "pids"
    proc = VllmProcess([sys.executable, str(script), str(pidfile), mode], log_path=tmp_path / "tree.log")
    proc.start()
    deadline = time.monotonic() + 20
    while not pidfile.exists():
        assert time.monotonic() < deadline, proc.log_tail()
        assert proc.poll() is None, proc.log_tail()
        time.sleep(0.05)
    return proc, [int(pid) for pid in pidfile.read_text().split()]


def alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def test_stop_escalates_to_sigkill_and_leaves_no_process_of_the_group(tmp_path: Path) -> None:
    proc, pids = start_tree(tmp_path, "stubborn")
    assert proc.pgid == proc.pid == pids[0]
    assert {p.pid for p in proc.survivors()} >= set(pids)  # grandchildren share the group

    started = time.monotonic()
    code = proc.stop(grace_s=1.0)
    took = time.monotonic() - started

    assert code == -signal.SIGKILL  # SIGTERM was ignored, so it took SIGKILL
    assert 1.0 <= took < 10.0
    assert proc.survivors() == []
    assert [pid for pid in pids if alive(pid)] == []


def test_stop_waits_for_grandchildren_even_when_the_leader_exits_at_once(tmp_path: Path) -> None:
    # The leader dying on SIGTERM is not the end: its children (here ignoring SIGTERM, one of them
    # in a session of its own) are what leaks ~1.2 GB per run with vLLM's EngineCore.
    proc, pids = start_tree(tmp_path, "orphaning")
    escaped = pids[-1]
    assert os.getpgid(escaped) != proc.pgid

    code = proc.stop(grace_s=1.0)

    assert code == -signal.SIGTERM
    assert [pid for pid in pids if alive(pid)] == []


def test_polite_tree_stops_within_the_grace_period(tmp_path: Path) -> None:
    proc, pids = start_tree(tmp_path, "polite")
    started = time.monotonic()
    assert proc.stop(grace_s=10.0) == -signal.SIGTERM
    assert time.monotonic() - started < 5.0
    assert [pid for pid in pids if alive(pid)] == []


def test_stop_is_idempotent_and_context_manager_stops(tmp_path: Path) -> None:
    proc, _ = start_tree(tmp_path, "polite")
    first = proc.stop()
    assert proc.stop() == first
    assert VllmProcess(["true"]).stop() is None  # never started

    with VllmProcess([sys.executable, "-c", "import time; time.sleep(600)"]) as ctx:
        pid = ctx.pid
        assert pid is not None and alive(pid)
    assert not alive(pid)


def test_unexpected_exit_is_noticed(tmp_path: Path) -> None:
    proc = VllmProcess([sys.executable, "-c", "import time, sys; time.sleep(0.3); sys.exit(7)"])
    proc.start()
    assert proc.poll() is None
    assert asyncio.run(asyncio.wait_for(proc.wait(poll_interval_s=0.05), timeout=10)) == 7
    assert proc.returncode == 7
    proc.stop()


def test_missing_program_raises_vllm_start_error(tmp_path: Path) -> None:
    proc = VllmProcess([str(tmp_path / "no-such-vllm"), "--port", "1"])
    with pytest.raises(VllmStartError, match="cannot start"):
        proc.start()


def test_exit_before_healthy_raises_with_the_log_tail(tmp_path: Path) -> None:
    code = "import sys; print('loading...'); print('RuntimeError: out of memory', flush=True); sys.exit(1)"
    proc = VllmProcess([sys.executable, "-c", code], log_path=tmp_path / "vllm.log")
    proc.start()
    url = f"http://127.0.0.1:{free_port()}/health"
    with pytest.raises(VllmStartError) as info:
        asyncio.run(proc.wait_ready(url, deadline_s=30, poll_interval_s=0.1))
    assert info.value.returncode == 1
    assert "RuntimeError: out of memory" in info.value.log_tail
    assert "exited with code 1" in str(info.value) and "out of memory" in str(info.value)
    proc.stop()


def test_deadline_raises_while_process_still_runs(tmp_path: Path) -> None:
    proc = VllmProcess([sys.executable, "-c", "print('never listens', flush=True); import time; time.sleep(600)"],
                       log_path=tmp_path / "vllm.log")  # fmt: skip
    proc.start()
    try:
        with pytest.raises(VllmStartError, match="did not become healthy") as info:
            asyncio.run(proc.wait_ready(f"http://127.0.0.1:{free_port()}/health", deadline_s=1, poll_interval_s=0.1))
        assert "never listens" in info.value.log_tail
    finally:
        proc.stop()


def test_wait_ready_reports_progress_then_returns(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    port = free_port()
    fake = write_script(tmp_path, "fake_vllm.py", FAKE_VLLM_SCRIPT)
    monkeypatch.setenv("FAKE_VLLM_STARTS", str(tmp_path / "starts"))
    monkeypatch.setenv("FAKE_VLLM_DELAY_S", "1.5")
    proc = VllmProcess([str(fake), "--port", str(port)], env=dict(os.environ))
    proc.start()
    lines: list[str] = []
    try:
        took = asyncio.run(
            proc.wait_ready(
                f"http://127.0.0.1:{port}/health",
                deadline_s=30,
                progress=lines.append,
                poll_interval_s=0.1,
                progress_every_s=0.5,
            )
        )
    finally:
        proc.stop()
    assert 1.0 < took < 30
    assert lines, "no progress line during a 1.5 s start"
    assert lines[0].startswith(f"waiting for vLLM on http://127.0.0.1:{port} (")
    assert "s, " in lines[0]


def test_child_is_terminated_when_its_owner_is_killed(tmp_path: Path) -> None:
    """SIGKILL of the supervisor must not orphan vLLM: the kernel sends the child SIGTERM."""
    pidfile = tmp_path / "child.pid"
    owner_code = textwrap.dedent(
        f"""
        import sys, time
        from app.process import VllmProcess
        process = VllmProcess([sys.executable, "-c", "import time; time.sleep(600)"])
        process.start()
        open({str(pidfile)!r}, "w").write(str(process.pid))
        time.sleep(600)
        """
    )
    owner = subprocess.Popen([sys.executable, "-c", owner_code], cwd=Path(__file__).resolve().parents[2])
    try:
        deadline = time.monotonic() + 30
        while not pidfile.exists() or not pidfile.read_text():
            assert time.monotonic() < deadline, "owner never started its child"
            time.sleep(0.05)
        child = psutil.Process(int(pidfile.read_text()))
        assert child.is_running()
        owner.kill()
        owner.wait()
        child.wait(timeout=10)  # raises psutil.TimeoutExpired if the child outlived its owner
    finally:
        owner.kill()
