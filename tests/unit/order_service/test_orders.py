"""The order flows against a real SQLite file and a fake payment client (a unit test of one
module: the payment service's behaviour is replaced by a few lines we control)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from common.caller import INTERNAL, Call
from common.errors import Aborted, DeadlineExceeded, FailedPrecondition, StoredError, Unavailable
from common.ids import new_id
from common.timestamps import now_us, timestamp_us
from order_service.changes import LocalChanges
from order_service.idempotency import Idempotency
from order_service.orders import Orders
from order_service.reconciler import Reconciler
from order_service.server import HISTORY
from order_service.store import OrderStore
from shop.order.v1 import order_pb2 as pb
from shop.payment.v1 import payment_pb2
from tests.unit.databases import migrated

P = payment_pb2


class FakePayments:
    """Keeps payments like the payment service: charges by key, a version per change. It can be
    made to fail, to wait, or to lose the answer to a change it made."""

    def __init__(self) -> None:
        self.by_key: dict[str, payment_pb2.Payment] = {}
        self.calls = 0
        self.called = asyncio.Event()
        self.down = False
        self.gate: asyncio.Event | None = None
        self.refunds: dict[str, int] = {}
        self.lose_next_answer = False

    def _by_id(self, payment_id: str) -> payment_pb2.Payment:
        (payment,) = [p for p in self.by_key.values() if p.id == payment_id]
        return payment

    def _changed(self, payment: payment_pb2.Payment) -> payment_pb2.Payment:
        payment.version += 1
        payment.updated_at.CopyFrom(timestamp_us(now_us()))
        if self.lose_next_answer:
            self.lose_next_answer = False
            raise DeadlineExceeded("the payment service did not answer in time")
        return payment_pb2.Payment.FromString(payment.SerializeToString())

    async def charge(self, order: pb.Order, payment_method: str, timeout: float) -> payment_pb2.Payment:
        self.calls += 1
        self.called.set()
        if self.gate is not None:
            await self.gate.wait()
        if self.down:
            raise Unavailable("the payment service is unavailable")
        key = f"{order.id}:charge"
        if key not in self.by_key:
            waits = payment_method == "pm_wallet_qr"
            status = P.PAYMENT_STATUS_REQUIRES_ACTION if waits else P.PAYMENT_STATUS_SUCCEEDED
            self.by_key[key] = payment_pb2.Payment(
                id=new_id("pay"), order_id=order.id, status=status, amount=order.amount, version=1,
                currency=order.currency, payment_method=payment_method, updated_at=timestamp_us(now_us()),
            )  # fmt: skip
            if status == P.PAYMENT_STATUS_REQUIRES_ACTION:
                self.by_key[key].next_action.expires_at.CopyFrom(timestamp_us(now_us() + 900_000_000))
        return self.by_key[key]

    async def get(self, payment_id: str, timeout: float, account_id: str = "") -> payment_pb2.Payment:
        if self.down:
            raise Unavailable("the payment service is unavailable")
        return self._by_id(payment_id)

    async def confirm(
        self, payment_id: str, approve: bool, timeout: float, account_id: str = ""
    ) -> payment_pb2.Payment:
        payment = self._by_id(payment_id)
        if payment.status != P.PAYMENT_STATUS_REQUIRES_ACTION:
            raise FailedPrecondition("only a payment that requires action can be confirmed")
        payment.status = P.PAYMENT_STATUS_SUCCEEDED if approve else P.PAYMENT_STATUS_FAILED
        payment.ClearField("next_action")
        return self._changed(payment)

    async def cancel(self, payment_id: str, timeout: float, account_id: str = "") -> payment_pb2.Payment:
        payment = self._by_id(payment_id)
        payment.status = P.PAYMENT_STATUS_CANCELED
        payment.ClearField("next_action")
        return self._changed(payment)

    async def refund(
        self, payment_id: str, amount: int | None, key: str, timeout: float, account_id: str = ""
    ) -> payment_pb2.Payment:
        payment = self._by_id(payment_id)
        if key in self.refunds:
            return payment
        self.refunds[key] = amount if amount is not None else payment.amount - payment.amount_refunded
        payment.amount_refunded += self.refunds[key]
        everything = payment.amount_refunded == payment.amount
        payment.status = P.PAYMENT_STATUS_REFUNDED if everything else P.PAYMENT_STATUS_PARTIALLY_REFUNDED
        return self._changed(payment)


@dataclass
class Setup:
    orders: Orders
    fake: FakePayments
    reconciler: Reconciler
    idempotency: Idempotency

    # The changes as the servicer runs them: once per idempotency key (None: no key).

    async def create(self, request: pb.CreateOrderRequest, key: str | None = None) -> tuple[pb.Order, bool]:
        flow, resume = self.orders.create, self.orders.finish_create
        return await self.idempotency.run("CreateOrder", _call(key), request, pb.Order, flow, resume)

    async def cancel(self, request: pb.CancelOrderRequest, key: str | None = None) -> tuple[pb.Order, bool]:
        method = f"CancelOrder:{request.order_id}"
        return await self.idempotency.run(method, _call(key), request, pb.Order, self.orders.cancel)

    async def refund(self, request: pb.RefundOrderRequest, key: str | None = None) -> tuple[pb.Order, bool]:
        method = f"RefundOrder:{request.order_id}"
        return await self.idempotency.run(method, _call(key), request, pb.Order, self.orders.refund)

    async def reconcile_later(self, seconds: float = 60) -> int:
        """A reconciler round as it would run `seconds` from now, when every check is due."""
        return await self.reconciler.run_once(at_us=now_us() + round(seconds * 1_000_000))


@pytest.fixture
async def setup(tmp_path: Path) -> AsyncIterator[Setup]:
    async with migrated(HISTORY, tmp_path) as db:
        fake = FakePayments()
        orders = Orders(OrderStore(db, LocalChanges()), fake)  # type: ignore[arg-type]
        yield Setup(orders, fake, Reconciler(orders, interval_s=1, deadline_s=5), Idempotency(db))


def _call(key: str | None) -> Call:
    return Call(INTERNAL, timeout=5, idempotency_key=key)


def create_request(method: str = "pm_card_visa") -> pb.CreateOrderRequest:
    return pb.CreateOrderRequest(
        customer_id="cus_1", currency="EUR", items=[pb.LineItem(sku="A", quantity=1, unit_price=100)],
        payment_method=method,
    )  # fmt: skip


async def pending_ids(orders: Orders) -> list[str]:
    return [o.id for o in await orders.store.page(None, "", "pending_payment", 100, None)]


async def test_versions_and_event_log(setup: Setup) -> None:
    order, replayed = await setup.create(create_request())
    assert not replayed
    assert order.status == pb.ORDER_STATUS_PAID
    assert order.version == 2
    log = await setup.orders.store.events_after(order.id, 0)
    assert [(o.version, o.status) for o in log] == [(1, pb.ORDER_STATUS_PENDING_PAYMENT), (2, pb.ORDER_STATUS_PAID)]
    # Nothing left to check: the charge was answered.
    assert await setup.reconcile_later() == 0


async def test_replay_and_mismatch(setup: Setup) -> None:
    first, _ = await setup.create(create_request(), "k1")
    again, replayed = await setup.create(create_request(), "k1")
    assert replayed
    assert again == first
    assert setup.fake.calls == 1
    with pytest.raises(FailedPrecondition) as mismatch:
        await setup.create(create_request("pm_card_mastercard"), "k1")
    assert mismatch.value.reason == "IDEMPOTENCY_KEY_REUSED"


async def test_concurrent_same_key_is_aborted_with_a_retry_delay(setup: Setup) -> None:
    setup.fake.gate = asyncio.Event()
    first = asyncio.create_task(setup.create(create_request(), "k2"))
    await setup.fake.called.wait()
    with pytest.raises(Aborted) as busy:
        await setup.create(create_request(), "k2")
    assert busy.value.retry_after_s is not None
    assert 1 <= busy.value.retry_after_s <= 6
    setup.fake.gate.set()
    order, _ = await first
    assert order.status == pb.ORDER_STATUS_PAID


async def test_retry_after_an_outage_resumes_the_same_order(setup: Setup) -> None:
    setup.fake.down = True
    with pytest.raises(Unavailable):
        await setup.create(create_request(), "k3")
    (pending_id,) = await pending_ids(setup.orders)
    setup.fake.down = False
    # The key was given up with the 503 (nothing was known yet): the retry takes it at once.
    order, replayed = await setup.create(create_request(), "k3")
    assert not replayed
    assert order.id == pending_id
    assert order.status == pb.ORDER_STATUS_PAID
    assert len(setup.fake.by_key) == 1


async def test_reconciler_finishes_a_pending_order_once_and_the_retry_gets_it(setup: Setup) -> None:
    setup.fake.down = True
    with pytest.raises(Unavailable):
        await setup.create(create_request(), "k4")
    (pending_id,) = await pending_ids(setup.orders)
    setup.fake.down = False
    assert await setup.reconcile_later() == 1
    assert (await setup.orders.get(pending_id)).status == pb.ORDER_STATUS_PAID
    assert await setup.reconcile_later() == 0  # finished: its check is gone
    order, _ = await setup.create(create_request(), "k4")
    assert order.id == pending_id
    assert len(setup.fake.by_key) == 1
    log = await setup.orders.store.events_after(pending_id, 0)
    assert [o.status for o in log] == [pb.ORDER_STATUS_PENDING_PAYMENT, pb.ORDER_STATUS_PAID]


async def test_cancel_rules_and_the_refusal_is_replayed(setup: Setup) -> None:
    paid, _ = await setup.create(create_request())
    request = pb.CancelOrderRequest(order_id=paid.id)
    with pytest.raises(FailedPrecondition) as first:
        await setup.cancel(request, "cancel-1")
    assert not first.value.replayed
    # Once a request has started, its answer is stored, errors too: the same key gets it again.
    with pytest.raises(StoredError) as again:
        await setup.cancel(request, "cancel-1")
    assert again.value.replayed
    assert again.value.to_status().message == first.value.message
    assert await setup.orders.get(paid.id) == paid


async def test_cancel_of_a_waiting_order(setup: Setup) -> None:
    waiting, _ = await setup.create(create_request("pm_wallet_qr"))
    assert waiting.status == pb.ORDER_STATUS_REQUIRES_ACTION
    canceled, _ = await setup.cancel(pb.CancelOrderRequest(order_id=waiting.id))
    assert canceled.status == pb.ORDER_STATUS_CANCELED
    assert canceled.payment.status == P.PAYMENT_STATUS_CANCELED


async def test_a_refund_whose_answer_was_lost_is_not_repeated(setup: Setup) -> None:
    paid, _ = await setup.create(create_request())
    setup.fake.lose_next_answer = True
    with pytest.raises(DeadlineExceeded):
        await setup.refund(pb.RefundOrderRequest(order_id=paid.id, amount=30), "refund-a")
    # Another refund comes between, then the first is retried with its key.
    await setup.refund(pb.RefundOrderRequest(order_id=paid.id, amount=20), "refund-b")
    retried, _ = await setup.refund(pb.RefundOrderRequest(order_id=paid.id, amount=30), "refund-a")
    assert sorted(setup.fake.refunds.values()) == [20, 30]
    assert retried.amount_refunded == 50
    assert retried.status == pb.ORDER_STATUS_PARTIALLY_REFUNDED


async def test_an_order_catches_up_with_a_refund_whose_answer_was_lost(setup: Setup) -> None:
    paid, _ = await setup.create(create_request())
    setup.fake.lose_next_answer = True
    with pytest.raises(DeadlineExceeded):
        await setup.refund(pb.RefundOrderRequest(order_id=paid.id, amount=30))
    assert (await setup.orders.get(paid.id)).amount_refunded == 0  # behind its payment, for now
    assert await setup.reconcile_later() == 1
    caught_up = await setup.orders.get(paid.id)
    assert (caught_up.status, caught_up.amount_refunded) == (pb.ORDER_STATUS_PARTIALLY_REFUNDED, 30)
    assert await setup.reconcile_later() == 0


async def test_refunds_without_a_key_are_each_a_refund(setup: Setup) -> None:
    paid, _ = await setup.create(create_request())
    for _ in range(2):
        await setup.refund(pb.RefundOrderRequest(order_id=paid.id, amount=10))
    assert (await setup.orders.get(paid.id)).amount_refunded == 20


async def test_an_expired_confirmation_window_is_checked_when_it_ends(setup: Setup) -> None:
    waiting, _ = await setup.create(create_request("pm_wallet_qr"))
    assert await setup.reconcile_later(seconds=60) == 0  # the window is 15 minutes
    payment = setup.fake._by_id(waiting.payment.id)
    payment.status, payment.failure_code = P.PAYMENT_STATUS_FAILED, "expired"
    payment.version += 1
    assert await setup.reconcile_later(seconds=901) == 1
    assert (await setup.orders.get(waiting.id)).status == pb.ORDER_STATUS_PAYMENT_FAILED
    assert await setup.reconcile_later(seconds=1000) == 0
