"""The order flows (orders.py): versions and their event log, cancel and refund, against a real
SQLite file and a fake payment client."""

from __future__ import annotations

import pytest

from common.errors import DeadlineExceeded
from shop.order.v1 import order_pb2 as pb
from shop.payment.v1 import payment_pb2 as P
from tests.unit.order_service.conftest import Setup, create_request


async def test_versions_and_event_log(setup: Setup) -> None:
    order, replayed = await setup.create(create_request())
    assert not replayed
    assert order.status == pb.ORDER_STATUS_PAID
    assert order.version == 2
    log = await setup.orders.store.events_after(order.id, 0)
    assert [(o.version, o.status) for o in log] == [(1, pb.ORDER_STATUS_PENDING_PAYMENT), (2, pb.ORDER_STATUS_PAID)]
    # Nothing left to check: the charge was answered.
    assert await setup.reconcile_later() == 0


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


async def test_refunds_without_a_key_are_each_a_refund(setup: Setup) -> None:
    paid, _ = await setup.create(create_request())
    for _ in range(2):
        await setup.refund(pb.RefundOrderRequest(order_id=paid.id, amount=10))
    assert (await setup.orders.get(paid.id)).amount_refunded == 20


async def test_an_outcome_for_an_order_changed_meanwhile_is_applied_to_its_newest_version(setup: Setup) -> None:
    """`record(stored=…)` (on PostgreSQL one statement that applies only at the stored version)
    finds the order moved on by another change: it takes the locking path, and no version is
    lost or written twice."""
    store = setup.orders.store
    order, _ = await setup.create(create_request("pm_wallet_qr"))
    payment = order.payment
    newer = P.Payment()
    newer.CopyFrom(payment)
    newer.version += 1
    newer.status = P.PAYMENT_STATUS_SUCCEEDED
    newer.ClearField("next_action")
    stale = pb.Order()
    stale.CopyFrom(order)
    stale.version -= 1  # as the flow stored it before its first change
    stale.status = pb.ORDER_STATUS_PENDING_PAYMENT
    stale.ClearField("payment")
    recorded = await store.record(order.id, newer, stored=stale)
    assert (recorded.version, recorded.status) == (order.version + 1, pb.ORDER_STATUS_PAID)
    log = await store.events_after(order.id, 0)
    assert [o.version for o in log] == [1, 2, 3]
    assert [o.status for o in log][-1] == pb.ORDER_STATUS_PAID
