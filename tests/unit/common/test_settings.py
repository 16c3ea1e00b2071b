from __future__ import annotations

import pytest

from common.settings import load_settings
from gateway.settings import GatewaySettings


def test_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GATEWAY_PORT", raising=False)
    settings = load_settings(GatewaySettings)
    assert settings.gateway_port == 8000
    assert settings.gateway_deadline_s == 5
    assert settings.log_format == "json"


def test_environment_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GATEWAY_PORT", "9000")
    monkeypatch.setenv("LOG_LEVEL", "debug")
    monkeypatch.setenv("GATEWAY_PUBLIC_URL", "https://shop.example/")
    settings = load_settings(GatewaySettings)
    assert settings.gateway_port == 9000
    assert settings.log_level == "DEBUG"
    assert settings.gateway_public_url == "https://shop.example"


@pytest.mark.parametrize(
    ("variable", "value"),
    [("GATEWAY_PORT", "x"), ("GATEWAY_DEADLINE_S", "0"), ("GATEWAY_PUBLIC_URL", "shop"), ("LOG_FORMAT", "xml")],
)
def test_bad_value_names_the_variable(monkeypatch: pytest.MonkeyPatch, variable: str, value: str) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(SystemExit) as stop:
        load_settings(GatewaySettings)
    assert str(stop.value).startswith(f"configuration error: {variable}:")
    assert "\n" not in str(stop.value)


@pytest.mark.parametrize("public_url", [None, ""])
def test_the_public_url_follows_the_port(monkeypatch: pytest.MonkeyPatch, public_url: str | None) -> None:
    """What QR codes and confirm links point at, when GATEWAY_PUBLIC_URL does not say."""
    monkeypatch.setenv("GATEWAY_PORT", "9123")
    if public_url is None:
        monkeypatch.delenv("GATEWAY_PUBLIC_URL", raising=False)
    else:
        monkeypatch.setenv("GATEWAY_PUBLIC_URL", public_url)
    assert load_settings(GatewaySettings).gateway_public_url == "http://localhost:9123"
    monkeypatch.delenv("GATEWAY_PORT")
    assert load_settings(GatewaySettings).gateway_public_url == "http://localhost:8000"
