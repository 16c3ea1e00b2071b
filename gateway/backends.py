"""The gateway's gRPC channels to the two services: opened once at start-up, shared by every
request, closed at shutdown. Calls go round-robin over every replica of a target; a call that
is safe to repeat is retried on UNAVAILABLE (by service config), on the next replica."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from common.grpc_client import open_channel
from common.tls import TlsFiles
from shop.order.v1 import events_pb2_grpc, order_pb2_grpc
from shop.payment.v1 import payment_pb2_grpc

_ORDER = "shop.order.v1.OrderService"
_PAYMENT = "shop.payment.v1.PaymentService"
# Safe to repeat whatever the request: reads, and changes that are idempotent by state (a second
# cancel of a canceled order, a second approval of an approved payment, answer as the first did).
ORDER_RETRYABLE = [(_ORDER, m) for m in ("GetOrder", "ListOrders", "WatchOrder", "CancelOrder", "ConfirmPayment")]
# The events feed and webhooks (docs/webhooks.md): reads, and a delete (of a deleted endpoint: the same answer).
ORDER_RETRYABLE += [("shop.order.v1.EventService", m) for m in ("ListEvents", "WatchEvents")]
ORDER_RETRYABLE += [
    ("shop.order.v1.WebhookService", m)
    for m in ("GetWebhookEndpoint", "ListWebhookEndpoints", "ListWebhookDeliveries", "DeleteWebhookEndpoint")
]
# Safe to repeat only with an Idempotency-Key: without one, a retry of a call whose replica died
# after its commit would make a second order or a second refund.
ORDER_RETRYABLE_WITH_KEY = [(_ORDER, m) for m in ("CreateOrder", "RefundOrder")]
ORDER_RETRYABLE_WITH_KEY += [
    ("shop.order.v1.WebhookService", m) for m in ("CreateWebhookEndpoint", "RotateWebhookSecret")
]
PAYMENT_RETRYABLE = [(_PAYMENT, "GetPayment")]


@dataclass
class Backends:
    order_channel: grpc.aio.Channel
    # The same target, with retries of CreateOrder and RefundOrder: for calls that carry a key.
    keyed_order_channel: grpc.aio.Channel
    payment_channel: grpc.aio.Channel
    orders: order_pb2_grpc.OrderServiceAsyncStub
    keyed_orders: order_pb2_grpc.OrderServiceAsyncStub
    payments: payment_pb2_grpc.PaymentServiceAsyncStub
    # The order service's EventService and WebhookService, on the order channel.
    events: events_pb2_grpc.EventServiceAsyncStub = field(init=False)
    webhooks: events_pb2_grpc.WebhookServiceAsyncStub = field(init=False)
    keyed_webhooks: events_pb2_grpc.WebhookServiceAsyncStub = field(init=False)

    def __post_init__(self) -> None:
        self.events = events_pb2_grpc.EventServiceStub(self.order_channel)
        self.webhooks = events_pb2_grpc.WebhookServiceStub(self.order_channel)
        self.keyed_webhooks = events_pb2_grpc.WebhookServiceStub(self.keyed_order_channel)

    @classmethod
    def open(cls, order_target: str, payment_target: str, tls: TlsFiles | None = None) -> Backends:
        order_channel = open_channel(order_target, ORDER_RETRYABLE, tls)
        keyed_order_channel = open_channel(order_target, ORDER_RETRYABLE + ORDER_RETRYABLE_WITH_KEY, tls)
        payment_channel = open_channel(payment_target, PAYMENT_RETRYABLE, tls)
        return cls(
            order_channel,
            keyed_order_channel,
            payment_channel,
            order_pb2_grpc.OrderServiceStub(order_channel),
            order_pb2_grpc.OrderServiceStub(keyed_order_channel),
            payment_pb2_grpc.PaymentServiceStub(payment_channel),
        )

    def order_writes(self, idempotency_key: str | None) -> order_pb2_grpc.OrderServiceAsyncStub:
        """The stub for a create or a refund: retried on another replica only with a key."""
        return self.keyed_orders if idempotency_key else self.orders

    async def health(self, timeout: float) -> dict[str, str]:
        """The grpc.health.v1 status of each service ("SERVING", "NOT_SERVING", "UNREACHABLE")."""

        async def check(name: str, channel: grpc.aio.Channel) -> tuple[str, str]:
            stub = health_pb2_grpc.HealthStub(channel)
            try:
                reply = await stub.Check(health_pb2.HealthCheckRequest(service=""), timeout=timeout)
            except grpc.aio.AioRpcError:
                return name, "UNREACHABLE"
            return name, health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)

        results = await asyncio.gather(
            check("order_service", self.order_channel), check("payment_service", self.payment_channel)
        )
        return dict(results)

    async def close(self) -> None:
        await asyncio.gather(
            self.order_channel.close(None), self.keyed_order_channel.close(None), self.payment_channel.close(None)
        )
