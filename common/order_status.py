"""An order's status, as the wire (`shop.order.v1.OrderStatus`) and the REST API (`paid`) name
it, and which statuses are final: nothing changes an order after one, so every watch of it ends
there (the order service's WatchOrder, the gateway's push channels)."""

from __future__ import annotations

from typing import TypeAlias

from shop.order.v1 import order_pb2 as pb

S = pb.OrderStatus
Status: TypeAlias = pb.OrderStatus.ValueType

FINAL = frozenset({S.ORDER_STATUS_PAYMENT_FAILED, S.ORDER_STATUS_CANCELED, S.ORDER_STATUS_REFUNDED})


def status_name(status: Status) -> str:
    """`ORDER_STATUS_PAID` → `paid`, as in the REST API and the orders table."""
    return S.Name(status).removeprefix("ORDER_STATUS_").lower()


FINAL_NAMES = frozenset(status_name(status) for status in FINAL)
