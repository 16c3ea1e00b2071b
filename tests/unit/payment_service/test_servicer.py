"""The payment handlers against a real SQLite file, called as the servicer base class would."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from common.db import Database
from common.errors import FailedPrecondition, InvalidArgument, NotFound, OutOfRange
from payment_service.processor import Processor
from payment_service.servicer import PaymentServicer
from payment_service.store import PaymentStore
from shop.payment.v1 import payment_pb2 as pb

CTX: Any = None


@pytest.fixture
async def servicer(tmp_path: Path) -> AsyncIterator[PaymentServicer]:
    db = Database(f"sqlite:///{tmp_path}/payments.db")
    store = PaymentStore(db)
    await store.start()
    yield PaymentServicer(store, Processor(latency_ms=0, action_timeout_s=900))
    await db.close()


def charge(method: str = "pm_card_visa", key: str = "k", amount: int = 1000) -> pb.ChargeRequest:
    return pb.ChargeRequest(order_id="ord_1", amount=amount, currency="EUR", payment_method=method, idempotency_key=key)


async def test_charge_is_idempotent_by_key(servicer: PaymentServicer) -> None:
    first = await servicer.Charge(charge(), CTX)
    assert await servicer.Charge(charge(), CTX) == first
    with pytest.raises(FailedPrecondition):
        await servicer.Charge(charge(amount=1), CTX)


async def test_invalid_charge(servicer: PaymentServicer) -> None:
    with pytest.raises(InvalidArgument) as error:
        await servicer.Charge(charge(method="pm_nope", key="", amount=0), CTX)
    assert {f for f, _ in error.value.violations} == {"payment_method", "idempotency_key", "amount"}


async def test_refunds_never_exceed_the_charge(servicer: PaymentServicer) -> None:
    payment = await servicer.Charge(charge(), CTX)
    part = await servicer.Refund(pb.RefundRequest(payment_id=payment.id, amount=400, idempotency_key="r1"), CTX)
    assert part.payment.status == pb.PAYMENT_STATUS_PARTIALLY_REFUNDED
    assert part.refund.id.startswith("re_")
    same = await servicer.Refund(pb.RefundRequest(payment_id=payment.id, amount=400, idempotency_key="r1"), CTX)
    assert same.refund == part.refund
    assert same.payment.amount_refunded == 400
    with pytest.raises(OutOfRange):
        await servicer.Refund(pb.RefundRequest(payment_id=payment.id, amount=601, idempotency_key="r2"), CTX)
    rest = await servicer.Refund(pb.RefundRequest(payment_id=payment.id, idempotency_key="r3"), CTX)
    assert rest.refund.amount == 600
    assert rest.payment.status == pb.PAYMENT_STATUS_REFUNDED
    with pytest.raises(FailedPrecondition):
        await servicer.Refund(pb.RefundRequest(payment_id=payment.id, idempotency_key="r4"), CTX)


async def test_confirmation(servicer: PaymentServicer) -> None:
    waiting = await servicer.Charge(charge("pm_wallet_qr", key="q"), CTX)
    assert waiting.status == pb.PAYMENT_STATUS_REQUIRES_ACTION
    assert waiting.next_action.type == pb.NEXT_ACTION_TYPE_SCAN_QR
    approved = await servicer.ConfirmPayment(pb.ConfirmPaymentRequest(payment_id=waiting.id), CTX)
    assert approved.status == pb.PAYMENT_STATUS_SUCCEEDED
    assert not approved.HasField("next_action")
    with pytest.raises(FailedPrecondition):
        await servicer.ConfirmPayment(pb.ConfirmPaymentRequest(payment_id=waiting.id, approve=False), CTX)
    with pytest.raises(NotFound):
        await servicer.GetPayment(pb.GetPaymentRequest(payment_id="pay_none"), CTX)


async def test_unconfirmed_payment_expires(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path}/p.db")
    store = PaymentStore(db)
    await store.start()
    expiring = PaymentServicer(store, Processor(latency_ms=0, action_timeout_s=0.001))
    waiting = await expiring.Charge(charge("pm_wallet_qr"), CTX)
    read = await expiring.GetPayment(pb.GetPaymentRequest(payment_id=waiting.id), CTX)
    assert read.status == pb.PAYMENT_STATUS_FAILED
    assert read.failure_code == "expired"
    with pytest.raises(FailedPrecondition):
        await expiring.ConfirmPayment(pb.ConfirmPaymentRequest(payment_id=waiting.id), CTX)
    await db.close()
