"""The gRPC APIs called directly, as any gRPC client would (docs/grpc-api.md#services)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import grpc
import pytest
from google.rpc import error_details_pb2, status_pb2  # type: ignore[import-untyped]
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from common.errors import STATUS_DETAILS_KEY, metadata_value
from shop.order.v1 import order_pb2, order_pb2_grpc
from shop.payment.v1 import payment_pb2, payment_pb2_grpc
from tests.harness import Stack


@pytest.fixture
async def payments(stack: Stack) -> AsyncIterator[payment_pb2_grpc.PaymentServiceAsyncStub]:
    async with grpc.aio.insecure_channel(stack.payment_target) as channel:
        yield payment_pb2_grpc.PaymentServiceStub(channel)


@pytest.fixture
async def orders(stack: Stack) -> AsyncIterator[order_pb2_grpc.OrderServiceAsyncStub]:
    async with grpc.aio.insecure_channel(stack.order_target) as channel:
        yield order_pb2_grpc.OrderServiceStub(channel)


def charge(key: str, amount: int = 1000, order_id: str = "ord_TEST") -> payment_pb2.ChargeRequest:
    return payment_pb2.ChargeRequest(
        order_id=order_id, amount=amount, currency="EUR", payment_method="pm_card_visa", idempotency_key=key
    )


async def test_charge_retried_with_the_same_key_charges_once(
    payments: payment_pb2_grpc.PaymentServiceAsyncStub,
) -> None:
    key = str(uuid.uuid4())
    first = await payments.Charge(charge(key), timeout=5)
    again = await payments.Charge(charge(key), timeout=5)
    assert first.status == payment_pb2.PAYMENT_STATUS_SUCCEEDED
    assert again == first
    other = await payments.Charge(charge(str(uuid.uuid4()), order_id="ord_OTHER"), timeout=5)
    assert other.id != first.id

    # One payment per order: another key for the same order is refused, nothing is charged.
    with pytest.raises(grpc.aio.AioRpcError) as second:
        await payments.Charge(charge(str(uuid.uuid4())), timeout=5)
    assert second.value.code() == grpc.StatusCode.ALREADY_EXISTS

    with pytest.raises(grpc.aio.AioRpcError) as reused:
        await payments.Charge(charge(key, amount=999), timeout=5)
    assert reused.value.code() == grpc.StatusCode.FAILED_PRECONDITION


async def test_invalid_argument_carries_field_violations(
    orders: order_pb2_grpc.OrderServiceAsyncStub,
) -> None:
    request = order_pb2.CreateOrderRequest(
        customer_id="", currency="EUR", items=[order_pb2.LineItem(sku="A", quantity=0, unit_price=1)],
        payment_method="pm_card_visa",
    )  # fmt: skip
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await orders.CreateOrder(request, timeout=5)
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    raw = metadata_value(error.value.trailing_metadata(), STATUS_DETAILS_KEY)
    assert isinstance(raw, bytes)
    status = status_pb2.Status.FromString(raw)
    bad_request = error_details_pb2.BadRequest()
    assert status.details[0].Unpack(bad_request)
    fields = {v.field for v in bad_request.field_violations}
    assert fields == {"customer_id", "items.0.quantity"}


async def test_order_rpcs(orders: order_pb2_grpc.OrderServiceAsyncStub) -> None:
    request = order_pb2.CreateOrderRequest(
        customer_id="cus_grpc", currency="USD", items=[order_pb2.LineItem(sku="A", quantity=3, unit_price=5)],
        payment_method="pm_card_visa",
    )  # fmt: skip
    created = await orders.CreateOrder(request, timeout=5)
    assert created.status == order_pb2.ORDER_STATUS_PAID
    assert created.amount == 15
    assert await orders.GetOrder(order_pb2.GetOrderRequest(order_id=created.id), timeout=5) == created
    with pytest.raises(grpc.aio.AioRpcError) as missing:
        await orders.GetOrder(order_pb2.GetOrderRequest(order_id="ord_missing"), timeout=5)
    assert missing.value.code() == grpc.StatusCode.NOT_FOUND

    # `paid` is not final: the stream stays open after the current version.
    live = orders.WatchOrder(order_pb2.WatchOrderRequest(order_id=created.id), timeout=5)
    first = await live.read()
    assert isinstance(first, order_pb2.OrderEvent)
    assert (first.type, first.version, first.order) == ("order.updated", created.version, created)
    live.cancel()
    # A resume point ahead of the order: OUT_OF_RANGE, not a stream that would later skip versions.
    ahead_request = order_pb2.WatchOrderRequest(order_id=created.id, after_version=created.version + 1)
    with pytest.raises(grpc.aio.AioRpcError) as ahead:
        await orders.WatchOrder(ahead_request, timeout=5).read()
    assert ahead.value.code() == grpc.StatusCode.OUT_OF_RANGE
    refunded = await orders.RefundOrder(order_pb2.RefundOrderRequest(order_id=created.id), timeout=5)
    assert refunded.status == order_pb2.ORDER_STATUS_REFUNDED

    async def versions(**after: int) -> list[int]:
        request = order_pb2.WatchOrderRequest(order_id=created.id, **after)
        return [e.version async for e in orders.WatchOrder(request, timeout=5)]

    # No after_version: the current (final) version. 0 is a resume point like any other: the
    # whole history. At or past the final version: nothing more, the stream just ends.
    assert await versions() == [refunded.version]
    assert await versions(after_version=0) == list(range(1, refunded.version + 1))
    assert await versions(after_version=1) == list(range(2, refunded.version + 1))
    assert await versions(after_version=refunded.version) == []
    assert await versions(after_version=refunded.version + 5) == []


@pytest.mark.parametrize("target", ["order_target", "payment_target"])
async def test_health_and_reflection(stack: Stack, target: str) -> None:
    async with grpc.aio.insecure_channel(getattr(stack, target)) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        reply = await health.Check(health_pb2.HealthCheckRequest(), timeout=5)
        assert reply.status == health_pb2.HealthCheckResponse.SERVING
        reflection = reflection_pb2_grpc.ServerReflectionStub(channel)
        call = reflection.ServerReflectionInfo(iter([reflection_pb2.ServerReflectionRequest(list_services="")]))
        names = {s.name async for reply in call for s in reply.list_services_response.service}
    expected = "shop.order.v1.OrderService" if target == "order_target" else "shop.payment.v1.PaymentService"
    assert {expected, "grpc.health.v1.Health", "grpc.reflection.v1alpha.ServerReflection"} <= names
