"""The payment service's transactions (payments.py) against a real SQLite file."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from common.caller import INTERNAL, CallerScope
from common.errors import AlreadyExists, FailedPrecondition, NotFound, OutOfRange
from payment_service.payments import NewCharge, Payments
from payment_service.processor import Processor
from payment_service.server import HISTORY
from payment_service.store import PaymentRecord
from tests.unit.databases import migrated


@pytest.fixture
async def payments(tmp_path: Path, database_server: str | None) -> AsyncIterator[Payments]:
    async with migrated(HISTORY, tmp_path, database_server) as db:
        yield Payments(db, Processor(latency_ms=0, action_timeout_s=900))


def charge(method: str = "pm_card_visa", key: str = "k", amount: int = 1000, order_id: str = "ord_1") -> NewCharge:
    return NewCharge(order_id=order_id, amount=amount, currency="EUR", payment_method=method, idempotency_key=key)


async def test_charge_is_idempotent_by_key(payments: Payments) -> None:
    first = await payments.charge(charge())
    assert (first.version, first.status) == (1, "succeeded")
    assert await payments.charge(charge()) == first
    with pytest.raises(FailedPrecondition) as reused:
        await payments.charge(charge(amount=1))
    assert reused.value.reason == "IDEMPOTENCY_KEY_REUSED"


async def test_one_payment_per_order(payments: Payments) -> None:
    first = await payments.charge(charge(key="k1"))
    with pytest.raises(AlreadyExists):
        await payments.charge(charge(key="k2"))
    other = await payments.charge(charge(key="k2", order_id="ord_2"))
    assert other.id != first.id


async def test_another_accounts_key_cannot_be_used(payments: Payments) -> None:
    await payments.charge(charge(), CallerScope(account_id="acct_a"))
    with pytest.raises(FailedPrecondition) as reused:
        await payments.charge(charge(), CallerScope(account_id="acct_b"))
    assert reused.value.reason == "IDEMPOTENCY_KEY_REUSED"


async def test_concurrent_charges_with_one_key_store_one_payment(payments: Payments) -> None:
    stored = await asyncio.gather(*(payments.charge(charge(key="same")) for _ in range(10)))
    assert len({p.id for p in stored}) == 1


async def test_refunds_never_exceed_the_charge(payments: Payments) -> None:
    payment = await payments.charge(charge())
    part, after = await payments.refund(payment.id, 400, "r1", INTERNAL)
    assert (after.status, after.version) == ("partially_refunded", payment.version + 1)
    assert part.id.startswith("re_")
    same, again = await payments.refund(payment.id, 400, "r1", INTERNAL)
    assert (same, again.amount_refunded) == (part, 400)
    with pytest.raises(OutOfRange):
        await payments.refund(payment.id, 601, "r2", INTERNAL)
    rest, done = await payments.refund(payment.id, None, "r3", INTERNAL)
    assert (rest.amount, done.status) == (600, "refunded")
    with pytest.raises(FailedPrecondition):
        await payments.refund(payment.id, None, "r4", INTERNAL)


async def test_a_refund_key_reused_for_another_refund_is_refused(payments: Payments) -> None:
    payment = await payments.charge(charge())
    await payments.refund(payment.id, 100, "r1", INTERNAL)
    for other in (200, None):
        with pytest.raises(FailedPrecondition) as reused:
            await payments.refund(payment.id, other, "r1", INTERNAL)
        assert reused.value.reason == "IDEMPOTENCY_KEY_REUSED"
    assert (await payments.get(payment.id)).amount_refunded == 100


async def test_concurrent_refunds_never_exceed_the_charge(payments: Payments) -> None:
    payment = await payments.charge(charge())
    outcomes = await asyncio.gather(
        *(payments.refund(payment.id, 300, f"r{i}", INTERNAL) for i in range(5)), return_exceptions=True
    )
    done = [o for o in outcomes if isinstance(o, tuple)]
    assert len(done) == 3
    assert all(isinstance(o, OutOfRange) for o in outcomes if o not in done)
    current = await payments.get(payment.id)
    assert (current.amount_refunded, current.version) == (900, 1 + 3)


async def test_confirmation(payments: Payments) -> None:
    waiting = await payments.charge(charge("pm_wallet_qr", key="q"))
    assert waiting.status == "requires_action"
    assert waiting.to_proto().HasField("next_action")
    approved = await payments.confirm(waiting.id, True, INTERNAL)
    assert approved.status == "succeeded"
    assert not approved.to_proto().HasField("next_action")
    assert await payments.confirm(waiting.id, True, INTERNAL) == approved  # a double tap
    with pytest.raises(FailedPrecondition):
        await payments.confirm(waiting.id, False, INTERNAL)
    with pytest.raises(FailedPrecondition):
        await payments.cancel(waiting.id, INTERNAL)
    with pytest.raises(NotFound):
        await payments.get("pay_none")


async def test_a_payment_outside_the_callers_scope_is_not_found(payments: Payments) -> None:
    payment = await payments.charge(charge(), CallerScope(account_id="acct_a"))
    stranger = CallerScope(account_id="acct_b")
    with pytest.raises(NotFound):
        await payments.get(payment.id, stranger)
    with pytest.raises(NotFound):
        await payments.cancel(payment.id, stranger)


async def test_unconfirmed_payment_expires(tmp_path: Path, database_server: str | None) -> None:
    async with migrated(HISTORY, tmp_path, database_server) as db:
        expiring = Payments(db, Processor(latency_ms=0, action_timeout_s=0.001))
        waiting = await expiring.charge(charge("pm_wallet_qr"))
        await asyncio.sleep(0.002)  # the confirmation window is 1 ms: let it pass
        read: PaymentRecord = await expiring.get(waiting.id)
        assert (read.status, read.failure_code) == ("failed", "expired")
        assert read.version == 2  # created, then expired (when first read after the window)
        with pytest.raises(FailedPrecondition):
            await expiring.confirm(waiting.id, True, INTERNAL)
