from __future__ import annotations

import logging

import pytest

from common.logs import ConsoleFormatter, adopt_request_id


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

