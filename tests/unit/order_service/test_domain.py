from __future__ import annotations

import pytest

from common.errors import InvalidArgument
from common.order_status import FINAL, status_name
from order_service.domain import can_move, order_amount, status_for_payment, validate_create
from shop.order.v1 import order_pb2 as pb
from shop.payment.v1 import payment_pb2

S = pb.OrderStatus


def request(**change: object) -> pb.CreateOrderRequest:
    fields: dict[str, object] = {
        "customer_id": "cus_1",
        "currency": "EUR",
        "items": [pb.LineItem(sku="A", quantity=2, unit_price=1299)],
        "payment_method": "pm_card_visa",
    }
    fields.update(change)
    return pb.CreateOrderRequest(**fields)  # type: ignore[arg-type]


def violations(req: pb.CreateOrderRequest) -> list[str]:
    with pytest.raises(InvalidArgument) as error:
        validate_create(req)
    return [field for field, _ in error.value.violations]


def test_amount_is_the_sum_of_lines() -> None:
    assert validate_create(request()) == 2598
    items = [pb.LineItem(sku="A", quantity=3, unit_price=5), pb.LineItem(sku="B", quantity=1, unit_price=0)]
    assert order_amount(items) == 15


def test_the_largest_order_does_not_overflow_int64() -> None:
    items = [pb.LineItem(sku=f"S{i}", quantity=1000, unit_price=10_000_000) for i in range(100)]
    assert order_amount(items) == 10**12 < 2**63 - 1
    assert "items" in violations(request(items=items))  # over the 100,000,000 total limit


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"customer_id": ""}, "customer_id"),
        ({"customer_id": "x" * 65}, "customer_id"),
        ({"customer_id": "cus/1"}, "customer_id"),
        ({"currency": "eur"}, "currency"),
        ({"payment_method": "pm_nope"}, "payment_method"),
        ({"items": []}, "items"),
        ({"items": [pb.LineItem(sku="A", quantity=1, unit_price=1)] * 101}, "items"),
        ({"items": [pb.LineItem(sku="", quantity=1, unit_price=1)]}, "items.0.sku"),
        ({"items": [pb.LineItem(sku="A", quantity=0, unit_price=1)]}, "items.0.quantity"),
        ({"items": [pb.LineItem(sku="A", quantity=1001, unit_price=1)]}, "items.0.quantity"),
        ({"items": [pb.LineItem(sku="A", quantity=1, unit_price=-1)]}, "items.0.unit_price"),
        ({"items": [pb.LineItem(sku="A", quantity=1, unit_price=10_000_001)]}, "items.0.unit_price"),
        ({"items": [pb.LineItem(sku="A", quantity=5, unit_price=0)]}, "items"),
    ],
)
def test_limits(change: dict[str, object], field: str) -> None:
    assert field in violations(request(**change))


def test_state_machine() -> None:
    assert can_move(S.ORDER_STATUS_PENDING_PAYMENT, S.ORDER_STATUS_PAID)
    assert can_move(S.ORDER_STATUS_REQUIRES_ACTION, S.ORDER_STATUS_CANCELED)
    assert can_move(S.ORDER_STATUS_PAID, S.ORDER_STATUS_REFUNDED)
    assert can_move(S.ORDER_STATUS_PARTIALLY_REFUNDED, S.ORDER_STATUS_REFUNDED)
    assert not can_move(S.ORDER_STATUS_PAID, S.ORDER_STATUS_CANCELED)
    assert not can_move(S.ORDER_STATUS_PENDING_PAYMENT, S.ORDER_STATUS_REFUNDED)
    for final in FINAL:
        assert not any(can_move(final, other) for other in S.values())


def test_payment_status_maps_to_order_status() -> None:
    payment = payment_pb2.Payment(status=payment_pb2.PAYMENT_STATUS_REQUIRES_ACTION)
    assert status_for_payment(payment) == S.ORDER_STATUS_REQUIRES_ACTION
    assert status_name(S.ORDER_STATUS_PARTIALLY_REFUNDED) == "partially_refunded"
