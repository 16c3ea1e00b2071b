"""The messages of the two hops, as protobuf and as the equivalent JSON documents.

- small: `PaymentService.Charge` (ChargeRequest → Payment), the order service → payment service hop;
- large: `OrderService.CreateOrder` with 100 line items (CreateOrderRequest → Order with its
  Payment), the gateway → order service hop. `Charge` carries no items, so the 100-item payload
  of the issue travels on the hop that does carry them.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from typing import Any

from common.ids import new_id
from common.timestamps import to_timestamp, utcnow
from gateway.convert import order_json, payment_json
from shop.order.v1 import order_pb2
from shop.payment.v1 import payment_pb2

LARGE_ITEMS = 100
PUBLIC_URL = "http://localhost:8000"
CURRENCY = "EUR"
METHOD = "pm_card_visa"


def charge_fields(key: str) -> dict[str, Any]:
    """A charge of an order of its own (the payment service keeps one payment per order)."""
    return {
        "order_id": f"ord_{key}",
        "amount": 2598,
        "currency": CURRENCY,
        "payment_method": METHOD,
        "idempotency_key": key,
    }


def charge_request(key: str) -> payment_pb2.ChargeRequest:
    return payment_pb2.ChargeRequest(**charge_fields(key))


def items_json(count: int) -> list[dict[str, Any]]:
    return [{"sku": f"SKU-{i:05d}", "quantity": 1 + i % 3, "unit_price": 1299 + i} for i in range(count)]


def create_order_fields(count: int = LARGE_ITEMS) -> dict[str, Any]:
    return {"customer_id": "cus_42", "currency": CURRENCY, "items": items_json(count), "payment_method": METHOD}


def create_order_request(count: int = LARGE_ITEMS) -> order_pb2.CreateOrderRequest:
    fields = create_order_fields(count)
    items = [order_pb2.LineItem(**item) for item in fields.pop("items")]
    return order_pb2.CreateOrderRequest(items=items, **fields)


def payment_message(amount: int = 2598, currency: str = CURRENCY, method: str = METHOD) -> payment_pb2.Payment:
    now = to_timestamp(utcnow())
    return payment_pb2.Payment(
        id=new_id("pay"),
        order_id=new_id("ord"),
        status=payment_pb2.PAYMENT_STATUS_SUCCEEDED,
        payment_method=method,
        amount=amount,
        currency=currency,
        created_at=now,
        updated_at=now,
    )


def paid_order(request: order_pb2.CreateOrderRequest, payment: payment_pb2.Payment | None = None) -> order_pb2.Order:
    """The order the services make of `request` when the card succeeds, built in memory (with
    `payment`, the one a charge answered, else one made up)."""
    amount = sum(i.quantity * i.unit_price for i in request.items)
    order_id = payment.order_id if payment is not None else new_id("ord")
    now = to_timestamp(utcnow())
    return order_pb2.Order(
        id=order_id,
        client_secret=f"{order_id}_secret_{secrets.token_urlsafe(24)}",
        customer_id=request.customer_id,
        status=order_pb2.ORDER_STATUS_PAID,
        currency=request.currency,
        items=request.items,
        amount=amount,
        payment=payment or payment_message(amount, request.currency, request.payment_method),
        version=2,
        created_at=now,
        updated_at=now,
    )


def order_message(count: int = LARGE_ITEMS) -> order_pb2.Order:
    return paid_order(create_order_request(count))


def hop_messages(payload: str) -> tuple[list[Any], list[Mapping[str, Any]]]:
    """The request and the response of one call of the hop: as protobuf, and as JSON documents."""
    if payload == "small":
        payment = payment_message()
        return [charge_request("bench-key"), payment], [charge_fields("bench-key"), payment_json(payment, PUBLIC_URL)]
    order = order_message()
    return [create_order_request(), order], [create_order_fields(), order_json(order, PUBLIC_URL)]
