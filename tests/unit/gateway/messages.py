"""Orders and payments as the services send them, for the gateway's unit tests: order `ord_1`
of the account `acct_shop`, 2 × 12.99 EUR, and its payment `pay_1`."""

from __future__ import annotations

from typing import Any

from common.timestamps import to_timestamp, utcnow
from shop.order.v1 import order_pb2
from shop.payment.v1 import payment_pb2

SECRET = "ord_1_secret_0123456789abcdef"
_SHARED: dict[str, Any] = {"amount": 2598, "currency": "EUR", "client_secret": SECRET}


def payment(status: payment_pb2.PaymentStatus.ValueType = payment_pb2.PAYMENT_STATUS_SUCCEEDED) -> payment_pb2.Payment:
    made = payment_pb2.Payment(id="pay_1", order_id="ord_1", status=status, payment_method="pm_card_visa", **_SHARED)
    made.created_at.CopyFrom(to_timestamp(utcnow()))
    made.updated_at.CopyFrom(made.created_at)
    return made


def order(status: order_pb2.OrderStatus.ValueType = order_pb2.ORDER_STATUS_PAID, version: int = 2) -> order_pb2.Order:
    items = [order_pb2.LineItem(sku="BOOK-42", quantity=2, unit_price=1299)]
    made = order_pb2.Order(id="ord_1", customer_id="cus_42", status=status, items=items, version=version, **_SHARED)
    made.payment.CopyFrom(payment())
    made.account_id = "acct_shop"
    made.created_at.CopyFrom(made.payment.created_at)
    made.updated_at.CopyFrom(made.payment.updated_at)
    return made
