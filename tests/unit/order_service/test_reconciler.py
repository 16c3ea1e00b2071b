"""The reconciler (reconciler.py) finishes what a lost answer left open: a pending charge, a
refund whose answer was lost, a confirmation window that ends — each once."""

from __future__ import annotations

import pytest

from common.errors import DeadlineExceeded
from shop.order.v1 import order_pb2 as pb
from shop.payment.v1 import payment_pb2 as P
from tests.unit.order_service.conftest import Setup, create_request


async def test_reconciler_finishes_a_pending_order_once_and_the_retry_gets_it(setup: Setup) -> None:
    pending_id = await setup.create_during_an_outage("k4")
    assert await setup.reconcile_later() == 1
    assert (await setup.orders.get(pending_id)).status == pb.ORDER_STATUS_PAID
    assert await setup.reconcile_later() == 0  # finished: its check is gone
    order, _ = await setup.create(create_request(), "k4")
    assert order.id == pending_id
    assert len(setup.fake.by_key) == 1
    log = await setup.orders.store.events_after(pending_id, 0)
    assert [o.status for o in log] == [pb.ORDER_STATUS_PENDING_PAYMENT, pb.ORDER_STATUS_PAID]


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


async def test_an_expired_confirmation_window_is_checked_when_it_ends(setup: Setup) -> None:
    waiting, _ = await setup.create(create_request("pm_wallet_qr"))
    assert await setup.reconcile_later(seconds=60) == 0  # the window is 15 minutes
    payment = setup.fake._by_id(waiting.payment.id)
    payment.status, payment.failure_code = P.PAYMENT_STATUS_FAILED, "expired"
    payment.version += 1
    assert await setup.reconcile_later(seconds=901) == 1
    assert (await setup.orders.get(waiting.id)).status == pb.ORDER_STATUS_PAYMENT_FAILED
    assert await setup.reconcile_later(seconds=1000) == 0
