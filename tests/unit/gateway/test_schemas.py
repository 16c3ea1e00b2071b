from __future__ import annotations

from typing import Any, get_args

import pytest
from pydantic import ValidationError

from common.documents import PAYMENT_STATUSES, PaymentStatus
from gateway.schemas import (
    ORDER_STATUSES,
    PROBLEMS,
    OrderCreate,
    OrderStatus,
    PaymentConfirm,
    RefundCreate,
)
from shop.order.v1 import order_pb2

BODY: dict[str, Any] = {
    "customer_id": "cus_42",
    "currency": "EUR",
    "items": [{"sku": "BOOK-42", "quantity": 2, "unit_price": 1299}],
    "payment_method": "pm_card_visa",
}


def test_the_statuses_are_the_services_enums_in_lower_case() -> None:
    assert ORDER_STATUSES[order_pb2.ORDER_STATUS_PARTIALLY_REFUNDED] == "partially_refunded"
    assert get_args(OrderStatus) == tuple(ORDER_STATUSES.values())
    assert get_args(PaymentStatus) == tuple(PAYMENT_STATUSES.values())
    assert "unspecified" not in get_args(OrderStatus)


@pytest.mark.parametrize(
    "change",
    [
        {"extra": 1},
        {"currency": "XXX"},
        {"items": []},
        {"items": [{"sku": "A", "quantity": "2", "unit_price": 1}]},  # strict: no "2" for 2
        {"items": [{"sku": "A", "quantity": 0, "unit_price": 1}]},
        {"customer_id": "cus 42"},
        {"payment_method": "pm_unknown"},
    ],
)
def test_a_new_order_refuses_what_the_contract_does_not_allow(change: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        OrderCreate.model_validate({**BODY, **change})


def test_a_refund_of_null_is_not_a_refund_of_everything() -> None:
    assert RefundCreate.model_validate({}).amount is None
    with pytest.raises(ValidationError, match="leave the field out"):
        RefundCreate.model_validate({"amount": None})


def test_a_confirmation_approves_by_default() -> None:
    assert PaymentConfirm.model_validate({}).approve is True


def test_every_problem_is_documented_as_problem_json() -> None:
    assert all(list(response["content"]) == ["application/problem+json"] for response in PROBLEMS.values())
