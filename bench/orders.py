"""The orders the benchmark's baselines answer, built in memory — no hop, no database — from the
same messages the services send, and turned into JSON by the gateway's own converter
(gateway/convert.py), so that every baseline answers exactly the document `POST /v1/orders` does.
"""

from __future__ import annotations

from typing import Any

from common.ids import new_id
from common.timestamps import now_us, timestamp_us
from gateway.convert import order_json
from gateway.schemas import OrderCreate
from order_service.domain import order_amount
from order_service.orders import new_client_secret
from shop.order.v1 import order_pb2
from shop.payment.v1 import payment_pb2


def paid_order(request: order_pb2.CreateOrderRequest, amount: int, payment: payment_pb2.Payment) -> order_pb2.Order:
    """The order as the order service answers it for a card that succeeds (version 2: stored
    pending, then paid), without storing it."""
    now = timestamp_us(now_us())
    return order_pb2.Order(
        id=payment.order_id,
        client_secret=new_client_secret(payment.order_id),
        customer_id=request.customer_id,
        status=order_pb2.ORDER_STATUS_PAID,
        currency=request.currency,
        items=request.items,
        amount=amount,
        payment=payment,
        version=2,
        created_at=now,
        updated_at=now,
    )


def bare_order(body: OrderCreate) -> dict[str, Any]:
    """`POST /v1/orders`'s document for a card that succeeds, field for field, made in memory."""
    request = order_pb2.CreateOrderRequest(**body.model_dump())
    amount = order_amount(list(request.items))
    now = timestamp_us(now_us())
    payment = payment_pb2.Payment(
        id=new_id("pay"),
        order_id=new_id("ord"),
        status=payment_pb2.PAYMENT_STATUS_SUCCEEDED,
        payment_method=request.payment_method,
        amount=amount,
        currency=request.currency,
        version=1,
        created_at=now,
        updated_at=now,
    )
    return order_json(paid_order(request, amount, payment), "")
