"""The services' shared skeleton (common/service.py): each service's settings read under its own
prefix, the shared ones under none, and a bad value names its real variable."""

from __future__ import annotations

import pytest

from common.settings import load_settings
from order_service.settings import OrderSettings
from payment_service.settings import PaymentSettings


def test_each_service_reads_its_own_prefix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ORDER_SERVICE_PORT", "6001")
    monkeypatch.setenv("PAYMENT_SERVICE_PORT", "6002")
    monkeypatch.setenv("ORDER_DATABASE_POOL_SIZE", "3")
    monkeypatch.setenv("PAYMENT_SERVICE_TARGET", "payments:50052")
    monkeypatch.setenv("LOG_LEVEL", "debug")
    order, payment = load_settings(OrderSettings), load_settings(PaymentSettings)
    assert (order.service_port, payment.service_port) == (6001, 6002)
    assert (order.database_pool_size, payment.database_pool_size) == (3, 10)
    assert order.payment_service_target == "payments:50052"
    assert order.log_level == payment.log_level == "DEBUG"
    assert (order.metrics_port, payment.metrics_port) == (9151, 9152)
    assert order.variable("metrics_port") == "ORDER_METRICS_PORT"


@pytest.mark.parametrize(
    ("settings", "variable", "value"),
    [
        (OrderSettings, "ORDER_SERVICE_PORT", "x"),
        (OrderSettings, "ORDER_RECONCILE_INTERVAL_S", "0"),
        (OrderSettings, "PAYMENT_SERVICE_TARGET", ""),
        (PaymentSettings, "PAYMENT_DATABASE_URL", "mysql://x"),
        (PaymentSettings, "LOG_FORMAT", "xml"),
    ],
)
def test_a_bad_value_names_its_variable(
    monkeypatch: pytest.MonkeyPatch, settings: type[OrderSettings | PaymentSettings], variable: str, value: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(SystemExit) as stop:
        load_settings(settings)
    assert str(stop.value).startswith(f"configuration error: {variable}:")
