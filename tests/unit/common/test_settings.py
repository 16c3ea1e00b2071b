from __future__ import annotations

import pytest

from common.settings import load_settings
from gateway.settings import GatewaySettings
from tests.bad_settings import GATEWAY, KEY, cases


@pytest.fixture(autouse=True)
def _one_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GATEWAY_API_KEYS", f"acct_1:{KEY}")


def test_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GATEWAY_PORT", raising=False)
    settings = load_settings(GatewaySettings)
    assert settings.gateway_port == 8000
    assert settings.gateway_deadline_s == 5
    assert settings.log_format == "json"
    assert str(settings.gateway_rate_limit) == "100 per 1 s"
    assert settings.gateway_demo_account is None
    assert settings.grpc_tls is None


def test_environment_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GATEWAY_PORT", "9000")
    monkeypatch.setenv("LOG_LEVEL", "debug")
    monkeypatch.setenv("GATEWAY_PUBLIC_URL", "https://shop.example/")
    settings = load_settings(GatewaySettings)
    assert settings.gateway_port == 9000
    assert settings.log_level == "DEBUG"
    assert settings.gateway_public_url == "https://shop.example"


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


@pytest.mark.parametrize(("variable", "value", "says"), cases(GATEWAY))
def test_a_bad_value_stops_the_start_with_one_line_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, says: str
) -> None:
    monkeypatch.setenv(variable, value)
    if variable == "GRPC_TLS_CA":
        monkeypatch.setenv("GRPC_TLS_CERT", "/nonexistent/cert.pem")
        monkeypatch.setenv("GRPC_TLS_KEY", "/nonexistent/key.pem")
    with pytest.raises(SystemExit) as stop:
        load_settings(GatewaySettings)
    assert str(stop.value).startswith("configuration error: ")
    assert f"{variable}: " in str(stop.value)
    assert says in str(stop.value)
    assert "\n" not in str(stop.value)
    assert KEY not in str(stop.value)  # a key is never echoed, not even a bad one
    assert "sk_test_0123456789abcd" not in str(stop.value)


@pytest.mark.parametrize(
    ("value", "origins"),
    [
        ("", ()),
        (" , ", ()),
        ("https://shop.example", ("https://shop.example",)),
        ("HTTPS://Shop.Example:443, http://localhost:3000", ("https://shop.example", "http://localhost:3000")),
        ("http://[::1]:8080,http://[::1]:8080", ("http://[::1]:8080",)),
    ],
)
def test_cors_origins_are_kept_as_browsers_send_them(
    monkeypatch: pytest.MonkeyPatch, value: str, origins: tuple[str, ...]
) -> None:
    monkeypatch.setenv("GATEWAY_CORS_ORIGINS", value)
    assert load_settings(GatewaySettings).gateway_cors_origins == origins


def test_the_rate_limit_storage_is_memory_unless_told(monkeypatch: pytest.MonkeyPatch) -> None:
    assert load_settings(GatewaySettings).gateway_rate_limit_storage == "memory://"
    monkeypatch.setenv("GATEWAY_RATE_LIMIT_STORAGE", "redis://:pass_word@redis:6379/2")
    settings = load_settings(GatewaySettings)
    assert settings.gateway_rate_limit_storage == "redis://:pass_word@redis:6379/2"
    assert "pass_word" not in repr(settings)


def test_a_bad_redis_url_is_never_echoed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GATEWAY_RATE_LIMIT_STORAGE", "redis://:pass_word@redis:6379/x")
    with pytest.raises(SystemExit) as stop:
        load_settings(GatewaySettings)
    assert "pass_word" not in str(stop.value)


def test_settings_never_show_a_key(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = load_settings(GatewaySettings)
    assert KEY not in repr(settings)
    assert KEY not in str(settings.model_dump())
