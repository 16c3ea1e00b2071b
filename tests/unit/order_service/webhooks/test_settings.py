"""WEBHOOK_* settings: the contract's defaults, and one line naming the variable for a bad value."""

from __future__ import annotations

import pytest

from common.settings import load_settings
from order_service.settings import OrderSettings


def test_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("WEBHOOK_ALLOW_PRIVATE_NETWORKS", "WEBHOOK_TIMEOUT_S", "WEBHOOK_RETRY_SCHEDULE_S"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("WEBHOOK_SECRET_OVERLAP_S", raising=False)
    settings = load_settings(OrderSettings)
    assert settings.webhook_allow_private_networks is False
    assert settings.webhook_timeout_s == 10
    assert settings.webhook_retry_schedule_s == (5, 300, 1800, 7200, 18000, 36000, 36000)
    assert settings.webhook_secret_overlap_s == 86400


def test_values(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WEBHOOK_ALLOW_PRIVATE_NETWORKS", "true")
    monkeypatch.setenv("WEBHOOK_RETRY_SCHEDULE_S", " 0.2, 0.5 ")
    settings = load_settings(OrderSettings)
    assert settings.webhook_allow_private_networks is True
    assert settings.webhook_retry_schedule_s == (0.2, 0.5)


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("WEBHOOK_ALLOW_PRIVATE_NETWORKS", "perhaps"),
        ("WEBHOOK_TIMEOUT_S", "0"),
        ("WEBHOOK_TIMEOUT_S", "ten"),
        ("WEBHOOK_RETRY_SCHEDULE_S", ""),
        ("WEBHOOK_RETRY_SCHEDULE_S", "5,x"),
        ("WEBHOOK_RETRY_SCHEDULE_S", "5,-1"),
        ("WEBHOOK_RETRY_SCHEDULE_S", "5,,6"),
        ("WEBHOOK_SECRET_OVERLAP_S", "-1"),
    ],
)
def test_a_bad_value_stops_with_one_line_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(SystemExit) as stop:
        load_settings(OrderSettings)
    assert str(stop.value).startswith(f"configuration error: {variable}:")
    assert "\n" not in str(stop.value)
