import pytest

from gateway import InsecureConfigError, Settings, create_app


def test_api_keys_from_env_are_comma_separated(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MAZE_API_KEYS", " old-key , new-key ,")
    assert Settings().api_keys == ["old-key", "new-key"]


def test_upstream_url_accepts_a_v1_suffix() -> None:
    assert Settings(upstream_url="http://127.0.0.1:8001/v1/").upstream_url == "http://127.0.0.1:8001"


def test_refuses_public_address_without_keys() -> None:
    with pytest.raises(InsecureConfigError, match="MAZE_API_KEYS"):
        create_app(Settings(host="0.0.0.0", api_keys=[]))


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "::1"])
def test_loopback_without_keys_is_allowed(host: str) -> None:
    create_app(Settings(host=host, api_keys=[]))


def test_public_address_with_keys_is_allowed() -> None:
    create_app(Settings(host="0.0.0.0", api_keys=["k"]))
