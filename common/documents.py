"""Protobuf messages → the REST API's JSON documents: the order and payment of REST API (steps
13-14 on the gateway's side) and the event of docs/webhooks.md#events. The gateway answers with them, and the order
service sends the same event documents to webhooks, so one event reads alike in the feed and in a
webhook's body. `public_url` is the gateway's (GATEWAY_PUBLIC_URL): the payment's `next_action`
links point there."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Literal, TypeVar
from urllib.parse import quote

# pydantic reads a TypedDict's fields only from typing_extensions' before Python 3.12.
from typing_extensions import TypedDict

from common.timestamps import rfc3339
from shop.order.v1 import events_pb2, order_pb2
from shop.payment.v1 import payment_pb2

_Number = TypeVar("_Number", bound=int)


def _api_names(enum: Iterable[tuple[str, _Number]], prefix: str) -> dict[_Number, str]:
    return {number: name.removeprefix(prefix).lower() for name, number in enum if number}


# The statuses as the API writes them: the services' enum names without their prefix, in lower
# case (ORDER_STATUS_PARTIALLY_REFUNDED → partially_refunded), by enum number.
ORDER_STATUSES = _api_names(order_pb2.OrderStatus.items(), "ORDER_STATUS_")
PAYMENT_STATUSES = _api_names(payment_pb2.PaymentStatus.items(), "PAYMENT_STATUS_")
OrderStatus = Literal[tuple(ORDER_STATUSES.values())]  # type: ignore[valid-type]
PaymentStatus = Literal[tuple(PAYMENT_STATUSES.values())]  # type: ignore[valid-type]


# The documents. TypedDicts rather than models: the functions below build them as plain dicts
# (encoded by orjson, with no model in between), and mypy holds them to these fields; the
# gateway's OpenAPI describes them from the same classes (gateway/schemas.py).


class LineItemPublic(TypedDict):
    sku: str
    quantity: int
    unit_price: int


class NextAction(TypedDict):
    type: Literal["scan_qr"]
    confirm_url: str
    qr_svg_url: str
    expires_at: str


class PaymentPublic(TypedDict):
    id: str
    status: PaymentStatus  # type: ignore[valid-type]
    payment_method: str
    amount: int
    amount_refunded: int
    currency: str
    failure_code: str | None
    decline_code: str | None
    failure_message: str | None
    next_action: NextAction | None
    created_at: str
    updated_at: str


class OrderPublic(TypedDict):
    id: str
    # Shown to the order's owner (and to a browser that has it already): give it to the
    # customer's browser, never an API key (docs/security.md#client-secrets).
    client_secret: str | None
    customer_id: str
    status: OrderStatus  # type: ignore[valid-type]
    currency: str
    items: list[LineItemPublic]
    amount: int
    amount_refunded: int
    payment: PaymentPublic | None
    version: int
    created_at: str
    updated_at: str


def _enum_name(prefix: str, name: str) -> str:
    return name.removeprefix(prefix).lower()


def with_secret(url: str, client_secret: str) -> str:
    """The URL with `?client_secret=`: what a browser or the phone page needs instead of a key."""
    return f"{url}?client_secret={quote(client_secret, safe='')}" if client_secret else url


def confirm_url(public_url: str, payment: payment_pb2.Payment) -> str:
    """The phone's confirmation page of the payment, with the secret that lets it read and confirm."""
    return with_secret(f"{public_url}/pay/{payment.id}", payment.client_secret)


def payment_json(payment: payment_pb2.Payment, public_url: str) -> PaymentPublic:
    next_action: NextAction | None = None
    if payment.status == payment_pb2.PAYMENT_STATUS_REQUIRES_ACTION and payment.HasField("next_action"):
        next_action = {
            "type": "scan_qr",
            "confirm_url": confirm_url(public_url, payment),
            "qr_svg_url": with_secret(f"{public_url}/v1/payments/{payment.id}/qr.svg", payment.client_secret),
            "expires_at": rfc3339(payment.next_action.expires_at),
        }
    return {
        "id": payment.id,
        "status": _enum_name("PAYMENT_STATUS_", payment_pb2.PaymentStatus.Name(payment.status)),
        "payment_method": payment.payment_method,
        "amount": payment.amount,
        "amount_refunded": payment.amount_refunded,
        "currency": payment.currency,
        "failure_code": payment.failure_code if payment.HasField("failure_code") else None,
        "decline_code": payment.decline_code if payment.HasField("decline_code") else None,
        "failure_message": payment.failure_message if payment.HasField("failure_message") else None,
        "next_action": next_action,
        "created_at": rfc3339(payment.created_at),
        "updated_at": rfc3339(payment.updated_at),
    }


def order_json(order: order_pb2.Order, public_url: str) -> OrderPublic:
    return {
        "id": order.id,
        "client_secret": order.client_secret or None,
        "customer_id": order.customer_id,
        "status": _enum_name("ORDER_STATUS_", order_pb2.OrderStatus.Name(order.status)),
        "currency": order.currency,
        "items": [{"sku": i.sku, "quantity": i.quantity, "unit_price": i.unit_price} for i in order.items],
        "amount": order.amount,
        "amount_refunded": order.amount_refunded,
        "payment": payment_json(order.payment, public_url) if order.HasField("payment") else None,
        "version": order.version,
        "created_at": rfc3339(order.created_at),
        "updated_at": rfc3339(order.updated_at),
    }


def event_json(event: events_pb2.Event, public_url: str) -> dict[str, Any]:
    """`{"id": "evt_…", "type": "order.updated", "created_at": …, "data": {"version", "order"}}`."""
    return {
        "id": event.id,
        "type": event.type,
        "created_at": rfc3339(event.created_at),
        "data": {"version": event.version, "order": order_json(event.order, public_url)},
    }
