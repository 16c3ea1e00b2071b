"""The payment handlers against a real SQLite file, called as the servicer base class would."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from common.errors import AlreadyExists, FailedPrecondition, InvalidArgument, NotFound, OutOfRange
from payment_service.payments import Payments
from payment_service.processor import Processor
from payment_service.server import HISTORY
from payment_service.servicer import PaymentServicer
from shop.payment.v1 import payment_pb2 as pb
from tests.unit.databases import migrated


class FakeContext:
    """What the handlers read of a ServicerContext: the call's metadata."""

    def __init__(self, *metadata: tuple[str, str]) -> None:
        self.metadata = metadata

    def invocation_metadata(self) -> tuple[tuple[str, str], ...]:
        return self.metadata


CTX: Any = FakeContext()


@pytest.fixture
async def servicer(tmp_path: Path) -> AsyncIterator[PaymentServicer]:
    async with migrated(HISTORY, tmp_path) as db:
        yield PaymentServicer(Payments(db, Processor(latency_ms=0, action_timeout_s=900)))


def charge(
    method: str = "pm_card_visa", key: str = "k", amount: int = 1000, order_id: str = "ord_1"
) -> pb.ChargeRequest:
    return pb.ChargeRequest(
        order_id=order_id, amount=amount, currency="EUR", payment_method=method, idempotency_key=key
    )


def refund(payment: pb.Payment, key: str, amount: int | None = None) -> pb.RefundRequest:
    request = pb.RefundRequest(payment_id=payment.id, idempotency_key=key)
    if amount is not None:
        request.amount = amount
    return request


async def test_charge_is_idempotent_by_key(servicer: PaymentServicer) -> None:
    first = await servicer.Charge(charge(), CTX)
    assert first.version == 1
    assert await servicer.Charge(charge(), CTX) == first
    with pytest.raises(FailedPrecondition) as reused:
        await servicer.Charge(charge(amount=1), CTX)
    assert reused.value.reason == "IDEMPOTENCY_KEY_REUSED"


async def test_one_payment_per_order(servicer: PaymentServicer) -> None:
    first = await servicer.Charge(charge(key="k1"), CTX)
    with pytest.raises(AlreadyExists):
        await servicer.Charge(charge(key="k2"), CTX)
    other = await servicer.Charge(charge(key="k2", order_id="ord_2"), CTX)
    assert other.id != first.id


async def test_concurrent_charges_with_one_key_store_one_payment(servicer: PaymentServicer) -> None:
    payments = await asyncio.gather(*(servicer.Charge(charge(key="same"), CTX) for _ in range(10)))
    assert len({p.id for p in payments}) == 1


async def test_invalid_charge(servicer: PaymentServicer) -> None:
    with pytest.raises(InvalidArgument) as error:
        await servicer.Charge(charge(method="pm_nope", key="", amount=0), CTX)
    assert {f for f, _ in error.value.violations} == {"payment_method", "idempotency_key", "amount"}


async def test_refunds_never_exceed_the_charge(servicer: PaymentServicer) -> None:
    payment = await servicer.Charge(charge(), CTX)
    part = await servicer.Refund(refund(payment, "r1", 400), CTX)
    assert part.payment.status == pb.PAYMENT_STATUS_PARTIALLY_REFUNDED
    assert part.payment.version == payment.version + 1
    assert part.refund.id.startswith("re_")
    same = await servicer.Refund(refund(payment, "r1", 400), CTX)
    assert same.refund == part.refund
    assert same.payment.amount_refunded == 400
    with pytest.raises(OutOfRange):
        await servicer.Refund(refund(payment, "r2", 601), CTX)
    rest = await servicer.Refund(refund(payment, "r3"), CTX)
    assert rest.refund.amount == 600
    assert rest.payment.status == pb.PAYMENT_STATUS_REFUNDED
    with pytest.raises(FailedPrecondition):
        await servicer.Refund(refund(payment, "r4"), CTX)


async def test_a_refund_key_reused_for_another_refund_is_refused(servicer: PaymentServicer) -> None:
    payment = await servicer.Charge(charge(), CTX)
    await servicer.Refund(refund(payment, "r1", 100), CTX)
    for other in (refund(payment, "r1", 200), refund(payment, "r1")):
        with pytest.raises(FailedPrecondition) as reused:
            await servicer.Refund(other, CTX)
        assert reused.value.reason == "IDEMPOTENCY_KEY_REUSED"
    current = await servicer.GetPayment(pb.GetPaymentRequest(payment_id=payment.id), CTX)
    assert current.amount_refunded == 100


async def test_concurrent_refunds_never_exceed_the_charge(servicer: PaymentServicer) -> None:
    payment = await servicer.Charge(charge(), CTX)
    outcomes = await asyncio.gather(
        *(servicer.Refund(refund(payment, f"r{i}", 300), CTX) for i in range(5)), return_exceptions=True
    )
    done = [o for o in outcomes if isinstance(o, pb.RefundResponse)]
    assert len(done) == 3
    assert all(isinstance(o, OutOfRange) for o in outcomes if o not in done)
    current = await servicer.GetPayment(pb.GetPaymentRequest(payment_id=payment.id), CTX)
    assert current.amount_refunded == 900
    assert current.version == 1 + 3


async def test_confirmation(servicer: PaymentServicer) -> None:
    waiting = await servicer.Charge(charge("pm_wallet_qr", key="q"), CTX)
    assert waiting.status == pb.PAYMENT_STATUS_REQUIRES_ACTION
    assert waiting.next_action.type == pb.NEXT_ACTION_TYPE_SCAN_QR
    approved = await servicer.ConfirmPayment(pb.ConfirmPaymentRequest(payment_id=waiting.id), CTX)
    assert approved.status == pb.PAYMENT_STATUS_SUCCEEDED
    assert not approved.HasField("next_action")
    assert await servicer.ConfirmPayment(pb.ConfirmPaymentRequest(payment_id=waiting.id), CTX) == approved
    with pytest.raises(FailedPrecondition):
        await servicer.ConfirmPayment(pb.ConfirmPaymentRequest(payment_id=waiting.id, approve=False), CTX)
    with pytest.raises(FailedPrecondition):
        await servicer.CancelPayment(pb.CancelPaymentRequest(payment_id=waiting.id), CTX)
    with pytest.raises(NotFound):
        await servicer.GetPayment(pb.GetPaymentRequest(payment_id="pay_none"), CTX)


async def test_unconfirmed_payment_expires(tmp_path: Path) -> None:
    async with migrated(HISTORY, tmp_path) as db:
        expiring = PaymentServicer(Payments(db, Processor(latency_ms=0, action_timeout_s=0.001)))
        waiting = await expiring.Charge(charge("pm_wallet_qr"), CTX)
        await asyncio.sleep(0.002)  # the confirmation window is 1 ms: let it pass
        read = await expiring.GetPayment(pb.GetPaymentRequest(payment_id=waiting.id), CTX)
        assert read.status == pb.PAYMENT_STATUS_FAILED
        assert read.failure_code == "expired"
        assert read.version == 2  # created, then expired (when first read after the window)
        with pytest.raises(FailedPrecondition):
            await expiring.ConfirmPayment(pb.ConfirmPaymentRequest(payment_id=waiting.id), CTX)
