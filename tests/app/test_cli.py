"""`python -m app`: bad input is one line on stderr and exit code 2, never a traceback."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import pytest

from app import cli
from app.errors import ModelNotFoundError
from app.profiles import CPU_TINY, Profile


def run_main(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, list[str]]:
    try:
        code = cli.main(list(argv))
    except SystemExit as exc:  # argparse errors exit from inside parse_args
        code = int(exc.code or 0)
    return code, capsys.readouterr().err.strip().splitlines()


def test_unknown_profile_is_one_line_and_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    code, err = run_main(capsys, "serve", "--profile", "nope")
    assert code == 2
    assert len(err) == 1
    assert "unknown profile 'nope'" in err[0] and "cpu-tiny" in err[0]


def test_profile_default_comes_from_maze_profile(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MAZE_PROFILE", "from-env")
    code, err = run_main(capsys, "serve")
    assert code == 2 and "'from-env'" in err[0]


def test_missing_model_dir_is_exit_2(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, err = run_main(capsys, "serve", "--model", str(tmp_path / "missing"), "--port", "0", "--upstream-port", "0")
    assert code == 2 and len(err) == 1 and "is not a directory" in err[0]


def test_port_in_use_is_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        code, err = run_main(capsys, "serve", "--port", str(taken.getsockname()[1]))
    assert code == 2 and len(err) == 1 and "not available" in err[0]


def test_bad_option_value_is_one_line_and_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    code, err = run_main(capsys, "serve", "--port", "eighty")
    assert code == 2 and len(err) == 1 and "invalid int value" in err[0]


def test_real_entry_point_prints_no_traceback() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "app", "serve", "--profile", "nope"], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("error: unknown profile 'nope'; known profiles: ")
    assert {"cpu-tiny", "l40s-fp8", "h100-bf16"} <= set(line.split(": ")[-1].split(", "))


def test_subcommands_are_registered() -> None:
    help_text = cli.build_parser().format_help()
    assert "serve" in help_text and "tiny-model" in help_text


def test_resolve_model(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    model_dir = tmp_path / "model"
    model_dir.mkdir()
    with pytest.raises(ModelNotFoundError, match=r"no config\.json"):
        cli.resolve_model(str(model_dir), CPU_TINY)
    (model_dir / "config.json").write_text("{}")
    assert cli.resolve_model(str(model_dir), CPU_TINY) == (str(model_dir.resolve()), None)
    assert cli.resolve_model("Qwen/Qwen2.5-Coder-7B", CPU_TINY) == ("Qwen/Qwen2.5-Coder-7B", None)
    with pytest.raises(ModelNotFoundError):
        cli.resolve_model("not a model", CPU_TINY)

    gpu = Profile(name="g", model="org/big", gpu="L4", quantization=None, max_model_len=1,
                  gpu_memory_utilization=None, max_num_seqs=None)  # fmt: skip
    assert cli.resolve_model(None, gpu) == ("org/big", None)

    built: list[Path] = []
    monkeypatch.setenv("MAZE_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr("app.tiny_model.build_tiny_model", lambda out: built.append(out) or out)
    assert cli.resolve_model(None, CPU_TINY) == (str(tmp_path / "tiny-model"), cli.TINY_MODEL_SERVED_NAME)
    assert built == [tmp_path / "tiny-model"]


def test_tiny_model_command_prints_the_directory(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr("app.tiny_model.build_tiny_model", lambda out: out)
    assert cli.main(["tiny-model", str(tmp_path / "out")]) == 0
    assert capsys.readouterr().out.strip() == str(tmp_path / "out")
