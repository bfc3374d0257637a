"""The plugin's settings: read from MAZE_* once, refused when out of range."""

from __future__ import annotations

import pydantic
import pytest

from app.vllm_plugin.settings import EnginePluginSettings, default_mask_threads


def test_defaults_turn_the_plugin_on(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("MAZE_ENGINE_PLUGIN", "MAZE_MASK_THREADS", "MAZE_GRAMMAR_CACHE_ENTRIES"):
        monkeypatch.delenv(name, raising=False)
    settings = EnginePluginSettings()
    assert settings.engine_plugin
    assert settings.mask_threads == default_mask_threads()
    assert 1 <= settings.mask_threads <= 8


def test_the_escape_hatch_and_the_thread_count_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MAZE_ENGINE_PLUGIN", "0")
    monkeypatch.setenv("MAZE_MASK_THREADS", "12")
    settings = EnginePluginSettings()
    assert not settings.engine_plugin
    assert settings.mask_threads == 12


@pytest.mark.parametrize("value", ["0", "-1", "many"])
def test_a_bad_thread_count_is_refused_naming_the_field(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv("MAZE_MASK_THREADS", value)
    with pytest.raises(pydantic.ValidationError, match="mask_threads"):
        EnginePluginSettings()
