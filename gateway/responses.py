"""How the routes answer with a document: encoded by orjson, an order with its version as ETag,
and `Idempotent-Replayed: true` where the service replayed the first answer to an
Idempotency-Key."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.responses import Response

from gateway.convert import order_json, payment_json
from shop.order.v1 import order_pb2
from shop.payment.v1 import payment_pb2


class JSONResponse(Response):
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


def etag(version: int) -> str:
    return f'"{version}"'


def order_response(
    order: order_pb2.Order, public_url: str, *, created: bool = False, replayed: bool = False
) -> JSONResponse:
    """200 with the order, or 201 with its Location for one just `created`."""
    headers = {"ETag": etag(order.version)}
    if created:
        headers["Location"] = f"/v1/orders/{order.id}"
    return _document(order_json(order, public_url), 201 if created else 200, headers, replayed)


def payment_response(payment: payment_pb2.Payment, public_url: str, *, replayed: bool = False) -> JSONResponse:
    return _document(payment_json(payment, public_url), 200, {}, replayed)


def _document(document: Any, status: int, headers: dict[str, str], replayed: bool) -> JSONResponse:
    if replayed:
        headers["Idempotent-Replayed"] = "true"
    return JSONResponse(document, status_code=status, headers=headers)
