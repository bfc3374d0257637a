"""`import app` stays light (modal_deploy.py imports it on machines without the serving stack)."""

from __future__ import annotations

import subprocess
import sys

import app


def test_import_app_pulls_in_no_heavy_dependency() -> None:
    code = (
        "import sys, app; "
        "heavy = [m for m in ('httpx', 'psutil', 'uvicorn', 'torch', 'transformers', 'vllm', 'gateway') "
        "if m in sys.modules]; print(heavy)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


def test_exported_names_exist() -> None:
    assert sorted(app.__all__) == sorted(set(app.__all__))
    for name in app.__all__:
        assert hasattr(app, name), name
