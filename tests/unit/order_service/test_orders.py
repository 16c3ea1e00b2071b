"""The order flows against a real SQLite file and a fake payment client (a unit test of one
module: the payment service's behaviour is replaced by a few lines we control)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from common.db import Database
from common.errors import Aborted, FailedPrecondition, Unavailable
from common.ids import new_id
from common.timestamps import to_timestamp, utcnow
from order_service.orders import Orders
from order_service.store import OrderStore
from order_service.watch import OrderBus
from shop.order.v1 import order_pb2 as pb
from shop.payment.v1 import payment_pb2


class FakePayments:
    """Keeps charges by key, like the payment service; can be made to fail or to wait."""

    def __init__(self) -> None:
        self.by_key: dict[str, payment_pb2.Payment] = {}
        self.calls = 0
        self.called = asyncio.Event()
        self.down = False
        self.gate: asyncio.Event | None = None
        self.refunds: dict[str, int] = {}
        self.lose_next_answer = False

    async def charge(self, order: pb.Order, payment_method: str, timeout: float) -> payment_pb2.Payment:
        self.calls += 1
        self.called.set()
        if self.gate is not None:
            await self.gate.wait()
        if self.down:
            raise Unavailable("the payment service is unavailable")
        key = f"{order.id}:charge"
        if key not in self.by_key:
            status = (
                payment_pb2.PAYMENT_STATUS_REQUIRES_ACTION
                if payment_method == "pm_wallet_qr"
                else payment_pb2.PAYMENT_STATUS_SUCCEEDED
            )
            self.by_key[key] = payment_pb2.Payment(
                id=new_id("pay"), order_id=order.id, status=status, amount=order.amount,
                currency=order.currency, payment_method=payment_method, updated_at=to_timestamp(utcnow()),
            )  # fmt: skip
        return self.by_key[key]

    async def refund(self, payment_id: str, amount: int | None, key: str, timeout: float) -> payment_pb2.Payment:
        (payment,) = [p for p in self.by_key.values() if p.id == payment_id]
        if key not in self.refunds:
            self.refunds[key] = amount if amount is not None else payment.amount - payment.amount_refunded
            payment.amount_refunded += self.refunds[key]
            payment.status = (
                payment_pb2.PAYMENT_STATUS_REFUNDED
                if payment.amount_refunded == payment.amount
                else payment_pb2.PAYMENT_STATUS_PARTIALLY_REFUNDED
            )
            payment.updated_at.CopyFrom(to_timestamp(utcnow()))
            if self.lose_next_answer:
                self.lose_next_answer = False
                raise Unavailable("the answer was lost")
        return payment


@pytest.fixture
async def setup(tmp_path: Path) -> AsyncIterator[tuple[Orders, FakePayments]]:
    db = Database(f"sqlite:///{tmp_path}/orders.db")
    store = OrderStore(db)
    await store.start()
    fake = FakePayments()
    yield Orders(store, fake, OrderBus()), fake  # type: ignore[arg-type]
    await db.close()


def create_request(method: str = "pm_card_visa") -> pb.CreateOrderRequest:
    return pb.CreateOrderRequest(
        customer_id="cus_1", currency="EUR", items=[pb.LineItem(sku="A", quantity=1, unit_price=100)],
        payment_method=method,
    )  # fmt: skip


async def test_versions_and_event_log(setup: tuple[Orders, FakePayments]) -> None:
    orders, _ = setup
    order, replayed = await orders.create(create_request(), None, 5)
    assert not replayed
    assert order.status == pb.ORDER_STATUS_PAID
    assert order.version == 2
    log = await orders.store.events_after(order.id, 0)
    assert [(o.version, o.status) for o in log] == [(1, pb.ORDER_STATUS_PENDING_PAYMENT), (2, pb.ORDER_STATUS_PAID)]


async def test_replay_and_mismatch(setup: tuple[Orders, FakePayments]) -> None:
    orders, fake = setup
    first, _ = await orders.create(create_request(), "k1", 5)
    again, replayed = await orders.create(create_request(), "k1", 5)
    assert replayed
    assert again == first
    assert fake.calls == 1
    with pytest.raises(FailedPrecondition) as mismatch:
        await orders.create(create_request("pm_card_mastercard"), "k1", 5)
    assert mismatch.value.reason == "IDEMPOTENCY_KEY_REUSED"


async def test_concurrent_same_key_is_aborted(setup: tuple[Orders, FakePayments]) -> None:
    orders, fake = setup
    fake.gate = asyncio.Event()
    first = asyncio.create_task(orders.create(create_request(), "k2", 5))
    await fake.called.wait()
    with pytest.raises(Aborted):
        await orders.create(create_request(), "k2", 5)
    fake.gate.set()
    order, _ = await first
    assert order.status == pb.ORDER_STATUS_PAID


async def test_retry_after_an_outage_resumes_the_same_order(setup: tuple[Orders, FakePayments]) -> None:
    orders, fake = setup
    fake.down = True
    with pytest.raises(Unavailable):
        await orders.create(create_request(), "k3", 5)
    (pending_id,) = await orders.store.ids_with_status("pending_payment")
    fake.down = False
    order, replayed = await orders.create(create_request(), "k3", 5)
    assert not replayed
    assert order.id == pending_id
    assert order.status == pb.ORDER_STATUS_PAID
    assert len(fake.by_key) == 1


async def test_reconciler_path_and_then_replay(setup: tuple[Orders, FakePayments]) -> None:
    orders, fake = setup
    fake.down = True
    with pytest.raises(Unavailable):
        await orders.create(create_request(), "k4", 5)
    (pending_id,) = await orders.store.ids_with_status("pending_payment")
    fake.down = False
    await orders.finish_pending(pending_id, 5)
    assert (await orders.get(pending_id)).status == pb.ORDER_STATUS_PAID
    order, _ = await orders.create(create_request(), "k4", 5)
    assert order.id == pending_id
    assert len(fake.by_key) == 1


async def test_cancel_rules(setup: tuple[Orders, FakePayments]) -> None:
    orders, _ = setup
    paid, _ = await orders.create(create_request(), None, 5)
    with pytest.raises(FailedPrecondition):
        await orders.cancel(pb.CancelOrderRequest(order_id=paid.id), None, 5)
    assert await orders.get(paid.id) == paid


async def test_a_refund_whose_answer_was_lost_is_not_repeated(setup: tuple[Orders, FakePayments]) -> None:
    orders, fake = setup
    paid, _ = await orders.create(create_request(), None, 5)
    fake.lose_next_answer = True
    with pytest.raises(Unavailable):
        await orders.refund(pb.RefundOrderRequest(order_id=paid.id, amount=30), "refund-a", 5)
    # Another refund comes between, then the first is retried with its key.
    await orders.refund(pb.RefundOrderRequest(order_id=paid.id, amount=20), "refund-b", 5)
    retried, _ = await orders.refund(pb.RefundOrderRequest(order_id=paid.id, amount=30), "refund-a", 5)
    assert sorted(fake.refunds.values()) == [20, 30]
    assert retried.amount_refunded == 50
    assert retried.status == pb.ORDER_STATUS_PARTIALLY_REFUNDED
