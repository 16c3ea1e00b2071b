"""The payment service's gRPC surface (servicer.py): what it refuses before any work, and a call
answered as a message, called as the generated base class would."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from common.caller import ACCOUNT_KEY, CLIENT_SECRET_KEY
from common.errors import InvalidArgument, PermissionDenied
from payment_service.payments import Payments
from payment_service.processor import Processor
from payment_service.server import HISTORY
from payment_service.servicer import PaymentServicer
from shop.payment.v1 import payment_pb2 as pb
from tests.unit.databases import migrated

SECRET = "ord_1_secret_0123456789abcdefABCDEF-_"


class FakeContext:
    """What the handlers read of a ServicerContext: the call's metadata."""

    def __init__(self, *metadata: tuple[str, str]) -> None:
        self.metadata = metadata

    def invocation_metadata(self) -> tuple[tuple[str, str], ...]:
        return self.metadata


CTX: Any = FakeContext()


@pytest.fixture
async def servicer(tmp_path: Path, database_server: str | None) -> AsyncIterator[PaymentServicer]:
    async with migrated(HISTORY, tmp_path, database_server) as db:
        yield PaymentServicer(Payments(db, Processor(latency_ms=0, action_timeout_s=900)))


def charge(method: str = "pm_card_visa", key: str = "k", amount: int = 1000) -> pb.ChargeRequest:
    return pb.ChargeRequest(order_id="ord_1", amount=amount, currency="EUR", payment_method=method, idempotency_key=key)


async def test_a_charge_is_answered_as_a_payment(servicer: PaymentServicer) -> None:
    payment = await servicer.Charge(charge(), FakeContext((ACCOUNT_KEY, "acct_a")))  # type: ignore[arg-type]
    assert (payment.status, payment.account_id, payment.version) == (pb.PAYMENT_STATUS_SUCCEEDED, "acct_a", 1)
    assert await servicer.GetPayment(pb.GetPaymentRequest(payment_id=payment.id), CTX) == payment


async def test_invalid_charge(servicer: PaymentServicer) -> None:
    with pytest.raises(InvalidArgument) as error:
        await servicer.Charge(charge(method="pm_nope", key="", amount=0), CTX)
    assert {f for f, _ in error.value.violations} == {"payment_method", "idempotency_key", "amount"}


async def test_invalid_refund(servicer: PaymentServicer) -> None:
    with pytest.raises(InvalidArgument) as error:
        await servicer.Refund(pb.RefundRequest(payment_id="pay_1", idempotency_key="", amount=0), CTX)
    assert {f for f, _ in error.value.violations} == {"idempotency_key", "amount"}
    with pytest.raises(InvalidArgument):
        await servicer.GetPayment(pb.GetPaymentRequest(payment_id="not an id"), CTX)


async def test_a_client_secret_may_not_charge(servicer: PaymentServicer) -> None:
    with pytest.raises(PermissionDenied):
        await servicer.Charge(charge(), FakeContext((CLIENT_SECRET_KEY, SECRET)))  # type: ignore[arg-type]
