"""The gateway's gRPC channels to the two services, and its one way of calling them.

The channels are opened once at start-up, shared by every request, closed at shutdown. Calls go
round-robin over every replica of a target; a call that is safe to repeat is retried on
UNAVAILABLE (by service config), on the next replica. Every unary call goes through
`Backends.call`: the gateway's deadline, the caller's scope and Idempotency-Key as metadata,
the client metrics; a gRPC error propagates to gateway/errors.py, which answers it."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import TypeVar

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from common.caller import CallerScope
from common.errors import REPLAYED_KEY, metadata_value
from common.grpc_client import open_channel
from common.tls import TlsFiles
from gateway.metrics import GRPC_CALLS, GRPC_LATENCY
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

_Request = TypeVar("_Request")
_Response = TypeVar("_Response")


@dataclass
class Backends:
    order_channel: grpc.aio.Channel
    # The same target, with retries of CreateOrder and RefundOrder: for calls that carry a key.
    keyed_order_channel: grpc.aio.Channel
    payment_channel: grpc.aio.Channel
    orders: order_pb2_grpc.OrderServiceAsyncStub
    keyed_orders: order_pb2_grpc.OrderServiceAsyncStub
    payments: payment_pb2_grpc.PaymentServiceAsyncStub
    deadline_s: float
    # The order service's EventService and WebhookService, on the order channel.
    events: events_pb2_grpc.EventServiceAsyncStub = field(init=False)
    webhooks: events_pb2_grpc.WebhookServiceAsyncStub = field(init=False)
    keyed_webhooks: events_pb2_grpc.WebhookServiceAsyncStub = field(init=False)

    def __post_init__(self) -> None:
        self.events = events_pb2_grpc.EventServiceStub(self.order_channel)
        self.webhooks = events_pb2_grpc.WebhookServiceStub(self.order_channel)
        self.keyed_webhooks = events_pb2_grpc.WebhookServiceStub(self.keyed_order_channel)

    @classmethod
    def open(cls, order_target: str, payment_target: str, deadline_s: float, tls: TlsFiles | None = None) -> Backends:
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
            deadline_s,
        )

    def order_writes(self, idempotency_key: str | None) -> order_pb2_grpc.OrderServiceAsyncStub:
        """The stub for a create or a refund: retried on another replica only with a key."""
        return self.keyed_orders if idempotency_key else self.orders

    async def call(
        self,
        name: str,
        method: grpc.aio.UnaryUnaryMultiCallable[_Request, _Response],
        message: _Request,
        scope: CallerScope,
        idempotency_key: str | None = None,
    ) -> tuple[_Response, bool]:
        """`method(message)` acting for `scope` (the caller's account or client secret: the
        services answer only within it); returns the answer and whether the service replayed it
        for the idempotency key. `name` labels the call's metrics."""
        metadata = scope.metadata()
        if idempotency_key:
            metadata += (("idempotency-key", idempotency_key),)
        started = time.perf_counter()
        call = method(message, timeout=self.deadline_s, metadata=metadata or None)
        try:
            answer = await call
        except grpc.aio.AioRpcError as exc:
            GRPC_CALLS.labels(name, exc.code().name).inc()
            raise
        finally:
            GRPC_LATENCY.labels(name).observe(time.perf_counter() - started)
        GRPC_CALLS.labels(name, "OK").inc()
        replayed = metadata_value(await call.trailing_metadata(), REPLAYED_KEY) == "true"
        return answer, replayed

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
