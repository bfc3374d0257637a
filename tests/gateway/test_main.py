import subprocess
import sys


def run_gateway(*args: str) -> subprocess.CompletedProcess[str]:
    env = {"PATH": "/usr/bin:/bin", "MAZE_API_KEYS": ""}
    return subprocess.run([sys.executable, "-m", "gateway", *args], capture_output=True, text=True, timeout=60, env=env)


def test_public_address_without_keys_is_one_line_and_exit_2() -> None:
    result = run_gateway("--upstream", "http://127.0.0.1:9", "--host", "0.0.0.0")
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0
    assert "MAZE_API_KEYS" in result.stderr and "Traceback" not in result.stderr


def test_bad_port_is_one_line_and_exit_2() -> None:
    result = run_gateway("--port", "not-a-port")
    assert result.returncode == 2 and "invalid int value" in result.stderr
