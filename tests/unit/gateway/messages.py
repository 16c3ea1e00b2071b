"""Orders and payments as the services send them, for the gateway's unit tests."""

from __future__ import annotations

from common.timestamps import to_timestamp, utcnow
from shop.order.v1 import order_pb2
from shop.payment.v1 import payment_pb2

SECRET = "ord_1_secret_0123456789abcdef"


def payment(status: payment_pb2.PaymentStatus.ValueType = payment_pb2.PAYMENT_STATUS_SUCCEEDED) -> payment_pb2.Payment:
    now = to_timestamp(utcnow())
    return payment_pb2.Payment(
        id="pay_1",
        order_id="ord_1",
        status=status,
        payment_method="pm_card_visa",
        amount=2598,
        currency="EUR",
        created_at=now,
        updated_at=now,
        client_secret=SECRET,
    )


def order(status: order_pb2.OrderStatus.ValueType = order_pb2.ORDER_STATUS_PAID, version: int = 2) -> order_pb2.Order:
    now = to_timestamp(utcnow())
    return order_pb2.Order(
        id="ord_1",
        customer_id="cus_42",
        status=status,
        currency="EUR",
        items=[order_pb2.LineItem(sku="BOOK-42", quantity=2, unit_price=1299)],
        amount=2598,
        payment=payment(),
        version=version,
        created_at=now,
        updated_at=now,
        account_id="acct_shop",
        client_secret=SECRET,
    )
