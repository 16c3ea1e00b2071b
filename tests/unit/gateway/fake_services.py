"""Stand-ins for the order and payment services, for the gateway's unit tests: real gRPC servers
(so that the gateway's channels, deadline and metadata are the real ones) whose methods answer
what the test set and remember what they were asked."""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import grpc
from google.protobuf.message import Message
from grpc_health.v1 import health_pb2_grpc
from grpc_health.v1._async import HealthServicer

from common.errors import REPLAYED_KEY
from shop.order.v1 import order_pb2_grpc
from shop.payment.v1 import payment_pb2_grpc
from tests.harness import free_port


@dataclass
class Asked:
    method: str
    message: Message
    metadata: dict[str, str]


@dataclass
class Answers:
    """What each method answers (by name), the errors to answer instead, and what was asked."""

    messages: dict[str, Message] = field(default_factory=dict)
    errors: dict[str, grpc.StatusCode] = field(default_factory=dict)
    replayed: bool = False
    asked: list[Asked] = field(default_factory=list)

    async def answer(self, method: str, message: Message, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
        metadata = {k: v for k, v in context.invocation_metadata() or () if isinstance(v, str)}
        self.asked.append(Asked(method, message, metadata))
        if method in self.errors:
            await context.abort(self.errors[method], f"{method} refused")
        if self.replayed:
            context.set_trailing_metadata(((REPLAYED_KEY, "true"),))
        return self.messages[method]

    def reset(self) -> Answers:
        self.messages.clear()
        self.errors.clear()
        self.asked.clear()
        self.replayed = False
        return self

    def last(self, method: str) -> Asked:
        return [asked for asked in self.asked if asked.method == method][-1]


ORDER_METHODS = ("CreateOrder", "GetOrder", "ListOrders", "CancelOrder", "RefundOrder", "ConfirmPayment")
PAYMENT_METHODS = ("GetPayment",)


def _answering(servicer: Any, answers: Answers, methods: tuple[str, ...]) -> Any:
    """`servicer` with `methods` answered from `answers`; its others stay UNIMPLEMENTED."""
    for method in methods:
        setattr(servicer, method, functools.partial(answers.answer, method))
    return servicer


@dataclass
class Services:
    answers: Answers
    target: str


async def serve() -> AsyncIterator[Services]:
    """Both fake services on one server (which says it is SERVING), until the caller is done."""
    answers = Answers()
    server = grpc.aio.server()
    # The generated servicers answer UNIMPLEMENTED for every method not given an answer.
    orders = _answering(order_pb2_grpc.OrderServiceServicer(), answers, ORDER_METHODS)  # type: ignore[abstract]
    payments = _answering(payment_pb2_grpc.PaymentServiceServicer(), answers, PAYMENT_METHODS)  # type: ignore[abstract]
    order_pb2_grpc.add_OrderServiceServicer_to_server(orders, server)
    payment_pb2_grpc.add_PaymentServiceServicer_to_server(payments, server)
    health_pb2_grpc.add_HealthServicer_to_server(HealthServicer(), server)
    port = free_port()
    server.add_insecure_port(f"127.0.0.1:{port}")
    await server.start()
    try:
        yield Services(answers, f"127.0.0.1:{port}")
    finally:
        await server.stop(None)
