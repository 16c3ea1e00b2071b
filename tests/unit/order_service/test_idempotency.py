"""REST idempotency around the flows (idempotency.py): a repeat gets the first answer, errors
included; a key in use is ABORTED; a retry after an outage finishes the order the first attempt
stored."""

from __future__ import annotations

import asyncio

import pytest

from common.errors import Aborted, FailedPrecondition, StoredError
from shop.order.v1 import order_pb2 as pb
from shop.payment.v1 import payment_pb2 as P
from tests.unit.order_service.conftest import Setup, create_request


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
    pending_id = await setup.create_during_an_outage("k3")
    # The key was given up with the 503 (nothing was known yet): the retry takes it at once.
    order, replayed = await setup.create(create_request(), "k3")
    assert not replayed
    assert order.id == pending_id
    assert order.status == pb.ORDER_STATUS_PAID
    assert len(setup.fake.by_key) == 1


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


async def test_a_confirmation_is_answered_with_its_payment_and_replayed(setup: Setup) -> None:
    waiting, _ = await setup.create(create_request("pm_wallet_qr"))
    request = pb.ConfirmPaymentRequest(payment_id=waiting.payment.id)
    first, replayed = await setup.confirm(request, "confirm-1")
    assert not replayed
    assert first.status == P.PAYMENT_STATUS_SUCCEEDED
    # Stored in the transaction that recorded it on the order: the payment, not the order.
    again, replayed = await setup.confirm(request, "confirm-1")
    assert replayed
    assert again == first
    assert (await setup.orders.get(waiting.id)).status == pb.ORDER_STATUS_PAID
