from __future__ import annotations

import logging

import pytest

from common.logs import ConsoleFormatter, adopt_request_id, redact


@pytest.mark.parametrize("given", ["req_01JD", "a", "x" * 128, "trace:7f-00/ok"])
def test_a_well_formed_request_id_is_kept(given: str) -> None:
    assert adopt_request_id(given) == given


@pytest.mark.parametrize("given", [None, "", "x" * 129, "has a space", "line\n", "tab\t", "é"])
def test_any_other_request_id_is_replaced(given: str | None) -> None:
    made = adopt_request_id(given)
    assert made != given
    assert made.startswith("req_")


def _record(message: str) -> logging.LogRecord:
    return logging.LogRecord("order_service.orders", logging.INFO, __file__, 1, message, None, None)


@pytest.mark.parametrize("service", ["gateway", "order_service", "payment_service"])
def test_console_lines_start_with_their_service_aligned(service: str) -> None:
    line = ConsoleFormatter(service).format(_record("order created"))
    assert line.startswith(f"{service} ")
    assert line.index("|") == len("payment_service") + 1
    assert line.endswith("order_service.orders: order created")


@pytest.mark.parametrize(
    ("line", "shown"),
    [
        ("< GET /v1/orders/o/ws?client_secret=ord_1_secret_abcdefghij&a=1 HTTP/1.1", "client_secret=[redacted]&a=1"),
        ('{"msg": "Authorization: Bearer sk_test_abcdefghijklmnopqrstuvwx"}', "Bearer [redacted]"),
        ("header: Basic c2tfdGVzdF9hYmNkZWY6", "Basic [redacted]"),
        ("the key sk_live_0123456789abcdef0123 was used", "sk_[redacted]"),
        ("the key rk_live_0123456789abcdef0123 was used", "rk_[redacted]"),
        ("order ord_1_secret_0123456789abcdef", "ord_1_secret_[redacted]"),
    ],
)
def test_secrets_are_redacted(line: str, shown: str) -> None:
    assert shown in redact(line)
    for secret in ("abcdefghij", "sk_test_abcdef", "0123456789abcdef", "c2tfdGVzdF9"):
        assert secret not in redact(line)


@pytest.mark.parametrize(
    "line", ['{"msg":"request","route":"/v1/orders/{order_id}","status":200}', "check_id desk_top basically"]
)
def test_other_lines_are_left_alone(line: str) -> None:
    assert redact(line) == line
