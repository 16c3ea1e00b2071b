"""Between the REST API's JSON and the services' protobuf messages: a new order's body becomes a
CreateOrderRequest; orders, payments and events become the API's documents (steps 13-14 on the
gateway's side). The documents are built in common/documents.py, shared with the order service,
whose webhooks send the same event documents; gateway/schemas.py describes them for OpenAPI."""

from __future__ import annotations

from common.documents import confirm_url, event_json, order_json, payment_json, with_secret
from gateway.schemas import OrderCreate
from shop.order.v1 import order_pb2

__all__ = ["confirm_url", "create_order_request", "event_json", "order_json", "payment_json", "with_secret"]


def create_order_request(body: OrderCreate) -> order_pb2.CreateOrderRequest:
    return order_pb2.CreateOrderRequest(
        customer_id=body.customer_id,
        currency=body.currency,
        items=[order_pb2.LineItem(sku=i.sku, quantity=i.quantity, unit_price=i.unit_price) for i in body.items],
        payment_method=body.payment_method,
    )
