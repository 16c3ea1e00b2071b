"""Answers of the payment service that never reach the order service — the call's deadline ran
out after the payment service had done the work. The order must catch up with its payment by
itself, within seconds (the durable checks and the reconciler), whatever the kind of change.

The answer is lost for real: the order service reaches the payment service through a proxy
(tests/netproxy.py) that holds the payment service's replies back until the caller has given up.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import TypeAlias

import grpc
import pytest

from shop.order.v1 import order_pb2, order_pb2_grpc
from shop.payment.v1 import payment_pb2, payment_pb2_grpc
from tests.harness import Stack
from tests.netproxy import HoldingProxy

ORDERS = 5
# The order service hands what is left of this deadline on to its call to the payment service,
# which must get there and commit while the answer is held: on a busy machine its own work before
# the call can take a good part of a second.
REFUND_DEADLINE_S = 2.0
# The reconciler finishes a check a second or two after it is due; the bound is for a hang, and
# leaves a busy two-core machine a wide margin.
CATCH_UP_S = 30.0


Stubs: TypeAlias = "tuple[order_pb2_grpc.OrderServiceAsyncStub, payment_pb2_grpc.PaymentServiceAsyncStub]"


@pytest.fixture
def proxied(tmp_path: Path) -> Iterator[tuple[Stack, HoldingProxy]]:
    """A stack whose order service calls the payment service through a HoldingProxy."""
    stack = Stack(tmp_path / "stack")
    proxy = HoldingProxy("127.0.0.1", stack.payment_port).start()
    stack.order.env["PAYMENT_SERVICE_TARGET"] = proxy.address
    try:
        yield stack.start(), proxy
    finally:
        stack.stop()
        proxy.stop()


@pytest.fixture
async def stubs(proxied: tuple[Stack, HoldingProxy]) -> AsyncIterator[Stubs]:
    stack, _ = proxied
    async with (
        grpc.aio.insecure_channel(stack.order_target) as orders,
        grpc.aio.insecure_channel(stack.payment_target) as payments,
    ):
        yield order_pb2_grpc.OrderServiceStub(orders), payment_pb2_grpc.PaymentServiceStub(payments)


async def agree(
    orders: order_pb2_grpc.OrderServiceAsyncStub, payments: payment_pb2_grpc.PaymentServiceAsyncStub, order_id: str
) -> tuple[order_pb2.Order, payment_pb2.Payment]:
    order = await orders.GetOrder(order_pb2.GetOrderRequest(order_id=order_id), timeout=5)
    payment = await payments.GetPayment(payment_pb2.GetPaymentRequest(payment_id=order.payment.id), timeout=5)
    return order, payment


async def test_an_order_catches_up_with_a_refund_whose_answer_was_lost(
    proxied: tuple[Stack, HoldingProxy], stubs: Stubs
) -> None:
    _, proxy = proxied
    orders, payments = stubs
    attempted: list[str] = []
    for _ in range(ORDERS):
        create = order_pb2.CreateOrderRequest(
            customer_id="cus_lost", currency="EUR", payment_method="pm_card_visa",
            items=[order_pb2.LineItem(sku="A", quantity=1, unit_price=1000)],
        )  # fmt: skip
        paid = await orders.CreateOrder(create, timeout=5)
        refund = order_pb2.RefundOrderRequest(order_id=paid.id, amount=300)
        with proxy.replies_held():
            with pytest.raises(grpc.aio.AioRpcError) as cut_off:
                await orders.RefundOrder(refund, timeout=REFUND_DEADLINE_S)
            assert cut_off.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
            # The payment service made the refund (its commit may land just after the caller gave
            # up); the order service has not heard of it.
            order, payment = await agree(orders, payments, paid.id)
            deadline = time.monotonic() + CATCH_UP_S
            while not payment.amount_refunded and time.monotonic() < deadline:
                await asyncio.sleep(0.1)
                order, payment = await agree(orders, payments, paid.id)
            assert (payment.amount_refunded, order.amount_refunded) == (300, 0)
        attempted.append(paid.id)

    # Every order agrees with its payment soon, without anybody asking again.
    started = time.monotonic()
    for order_id in attempted:
        while True:
            order, payment = await agree(orders, payments, order_id)
            if (order.amount_refunded, order.payment.version) == (payment.amount_refunded, payment.version):
                break
            assert time.monotonic() - started < CATCH_UP_S, f"{order_id} is still behind its payment"
            await asyncio.sleep(0.1)
        assert order.amount_refunded in (0, 300)
        expected = order_pb2.ORDER_STATUS_PARTIALLY_REFUNDED if order.amount_refunded else order_pb2.ORDER_STATUS_PAID
        assert order.status == expected
