"""The plugin's entry point: registered where vLLM looks, and off when asked."""

from __future__ import annotations

import logging
from importlib.metadata import entry_points

import pytest

from app import vllm_plugin


def test_vllm_finds_the_plugin_in_its_general_plugins_group() -> None:
    found = {ep.name: ep.value for ep in entry_points(group="vllm.general_plugins")}
    assert found.get("maze_engine") == "app.vllm_plugin:register"
    assert entry_points(group="vllm.general_plugins")["maze_engine"].load() is vllm_plugin.register


def test_maze_engine_plugin_0_leaves_vllm_as_shipped(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from vllm.v1.structured_output import StructuredOutputManager

    monkeypatch.setenv("MAZE_ENGINE_PLUGIN", "0")
    before = StructuredOutputManager.grammar_bitmask
    caplog.set_level(logging.INFO, logger="vllm.maze_engine_plugin")
    logging.getLogger("vllm.maze_engine_plugin").propagate = True
    vllm_plugin.register()
    assert StructuredOutputManager.grammar_bitmask is before
    assert "off (MAZE_ENGINE_PLUGIN=0)" in caplog.text


def test_an_unreviewed_vllm_is_left_as_shipped(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    import vllm
    from vllm.v1.structured_output import StructuredOutputManager

    monkeypatch.delenv("MAZE_ENGINE_PLUGIN", raising=False)
    monkeypatch.setattr(vllm, "__version__", "0.99.0")
    before = StructuredOutputManager.grammar_bitmask
    caplog.set_level(logging.INFO, logger="vllm.maze_engine_plugin")
    logging.getLogger("vllm.maze_engine_plugin").propagate = True
    vllm_plugin.register()
    assert StructuredOutputManager.grammar_bitmask is before
    assert "not applied" in caplog.text and "0.99.0 was never reviewed" in caplog.text
