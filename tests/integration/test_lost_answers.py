"""Answers of the payment service that never reach the order service — the call's deadline ran
out after the payment service had done the work. The order must catch up with its payment by
itself, within seconds (the durable checks and the reconciler), whatever the kind of change."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import grpc
import pytest

from shop.order.v1 import order_pb2, order_pb2_grpc
from shop.payment.v1 import payment_pb2, payment_pb2_grpc
from tests.harness import Stack

# Deadlines from about where the payment service's commit lands to well past it: some calls fail
# before anything was done, some after the refund was made (the case under test), some succeed.
DEADLINES_MS = [0.5 + 0.25 * i for i in range(60)]
CATCH_UP_S = 5.0


# Quoted: the async stub classes exist only in the generated .pyi files.
Stubs = tuple["order_pb2_grpc.OrderServiceAsyncStub", "payment_pb2_grpc.PaymentServiceAsyncStub"]


@pytest.fixture
async def stubs(stack: Stack) -> AsyncIterator[Stubs]:
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


async def test_an_order_catches_up_with_a_refund_whose_answer_was_lost(stubs: Stubs) -> None:
    orders, payments = stubs
    behind: list[str] = []
    attempted: list[str] = []
    codes: set[grpc.StatusCode] = set()
    for deadline_ms in DEADLINES_MS:
        create = order_pb2.CreateOrderRequest(
            customer_id="cus_lost", currency="EUR", payment_method="pm_card_visa",
            items=[order_pb2.LineItem(sku="A", quantity=1, unit_price=1000)],
        )  # fmt: skip
        paid = await orders.CreateOrder(create, timeout=5)
        refund = order_pb2.RefundOrderRequest(order_id=paid.id, amount=300)
        try:
            await orders.RefundOrder(refund, timeout=deadline_ms / 1000)
        except grpc.aio.AioRpcError as exc:
            codes.add(exc.code())
            order, payment = await agree(orders, payments, paid.id)
            if payment.amount_refunded != order.amount_refunded:
                behind.append(paid.id)
        attempted.append(paid.id)
    assert codes <= {grpc.StatusCode.DEADLINE_EXCEEDED}
    assert behind, "no refund was cut off after the payment service had made it: the test did not test"

    # Every order agrees with its payment within seconds, without anybody asking again.
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
