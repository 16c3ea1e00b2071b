from __future__ import annotations

import pytest

from common.logs import redact


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
