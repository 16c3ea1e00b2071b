"""The gateway's gRPC channels to the two services: opened once at start-up, shared by every
request, closed at shutdown. Idempotent calls are retried on UNAVAILABLE by service config."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from common.grpc_client import open_channel
from shop.order.v1 import order_pb2_grpc
from shop.payment.v1 import payment_pb2_grpc

_ORDER = "shop.order.v1.OrderService"
_PAYMENT = "shop.payment.v1.PaymentService"
# Reads, and writes the order service makes safe to repeat (by state or by key).
ORDER_RETRYABLE = [(_ORDER, m) for m in ("GetOrder", "ListOrders", "WatchOrder")]
PAYMENT_RETRYABLE = [(_PAYMENT, "GetPayment")]


@dataclass
class Backends:
    order_channel: grpc.aio.Channel
    payment_channel: grpc.aio.Channel
    orders: order_pb2_grpc.OrderServiceAsyncStub
    payments: payment_pb2_grpc.PaymentServiceAsyncStub

    @classmethod
    def open(cls, order_target: str, payment_target: str) -> Backends:
        order_channel = open_channel(order_target, ORDER_RETRYABLE)
        payment_channel = open_channel(payment_target, PAYMENT_RETRYABLE)
        return cls(
            order_channel,
            payment_channel,
            order_pb2_grpc.OrderServiceStub(order_channel),
            payment_pb2_grpc.PaymentServiceStub(payment_channel),
        )

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
        await asyncio.gather(self.order_channel.close(None), self.payment_channel.close(None))
