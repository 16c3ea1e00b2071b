"""The order service as a gRPC client of the payment service: the article's steps 2-5 and 12-14.

Steps 2-4: an order becomes a `ChargeRequest`, which the generated stub encodes to protobuf.
Step 5: grpc.aio sends it over the shared HTTP/2 channel. Steps 12-14: the stub decodes the
`Payment` that comes back, and orders.py records it on the order.

Errors of the payment service are translated here, in one place, into the order service's own
errors: the caller learns that payments are unavailable or slow, never an internal address.
"""

from __future__ import annotations

from collections.abc import Awaitable
from typing import TypeVar

import grpc

from common.caller import ACCOUNT_KEY
from common.errors import (
    Aborted,
    DeadlineExceeded,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    OutOfRange,
    ServiceError,
    Unavailable,
    error_reason,
    field_violations,
    rich_status,
)
from common.grpc_client import open_channel
from common.tls import TlsFiles
from shop.order.v1 import order_pb2
from shop.payment.v1 import payment_pb2 as pb
from shop.payment.v1 import payment_pb2_grpc

T = TypeVar("T")

SERVICE = "shop.payment.v1.PaymentService"
# Safe to send again after UNAVAILABLE: reads, and writes that are idempotent by key or by state.
RETRYABLE = [(SERVICE, m) for m in ("Charge", "GetPayment", "Refund", "CancelPayment", "ConfirmPayment")]

_PASSED_ON: dict[grpc.StatusCode, type[ServiceError]] = {
    grpc.StatusCode.INVALID_ARGUMENT: InvalidArgument,
    grpc.StatusCode.FAILED_PRECONDITION: FailedPrecondition,
    grpc.StatusCode.OUT_OF_RANGE: OutOfRange,
    grpc.StatusCode.NOT_FOUND: NotFound,
    grpc.StatusCode.ABORTED: Aborted,
}


def charge_key(order_id: str) -> str:
    """The one idempotency key an order is ever charged with."""
    return f"{order_id}:charge"


def _acting_for(account_id: str) -> tuple[tuple[str, str], ...] | None:
    """Every call about an order says whose it is: the payment service stores the account with
    the charge, and scopes the later calls by it (an order from before accounts has none: the
    call is internal)."""
    return ((ACCOUNT_KEY, account_id),) if account_id else None


class PaymentClient:
    def __init__(self, target: str, tls: TlsFiles | None = None) -> None:
        self.channel = open_channel(target, RETRYABLE, tls)
        self.stub = payment_pb2_grpc.PaymentServiceStub(self.channel)

    async def close(self) -> None:
        await self.channel.close(None)

    async def charge(self, order: order_pb2.Order, payment_method: str, timeout: float) -> pb.Payment:
        request = pb.ChargeRequest(
            order_id=order.id,
            amount=order.amount,
            currency=order.currency,
            payment_method=payment_method,
            idempotency_key=charge_key(order.id),
            client_secret=order.client_secret,
        )
        return await _call(self.stub.Charge(request, timeout=timeout, metadata=_acting_for(order.account_id)))

    async def get(self, payment_id: str, timeout: float, account_id: str) -> pb.Payment:
        request = pb.GetPaymentRequest(payment_id=payment_id)
        return await _call(self.stub.GetPayment(request, timeout=timeout, metadata=_acting_for(account_id)))

    async def confirm(self, payment_id: str, approve: bool, timeout: float, account_id: str) -> pb.Payment:
        request = pb.ConfirmPaymentRequest(payment_id=payment_id, approve=approve)
        return await _call(self.stub.ConfirmPayment(request, timeout=timeout, metadata=_acting_for(account_id)))

    async def refund(
        self, payment_id: str, amount: int | None, key: str, timeout: float, account_id: str
    ) -> pb.Payment:
        request = pb.RefundRequest(payment_id=payment_id, idempotency_key=key)
        if amount is not None:
            request.amount = amount
        call = self.stub.Refund(request, timeout=timeout, metadata=_acting_for(account_id))
        response: pb.RefundResponse = await _call(call)
        return response.payment

    async def cancel(self, payment_id: str, timeout: float, account_id: str) -> pb.Payment:
        request = pb.CancelPaymentRequest(payment_id=payment_id)
        return await _call(self.stub.CancelPayment(request, timeout=timeout, metadata=_acting_for(account_id)))


async def _call(call: Awaitable[T]) -> T:
    try:
        return await call
    except grpc.aio.AioRpcError as exc:
        raise _translate(exc) from exc


def _translate(exc: grpc.aio.AioRpcError) -> ServiceError:
    code = exc.code()
    if code == grpc.StatusCode.DEADLINE_EXCEEDED:
        return DeadlineExceeded("the payment service did not answer in time")
    if code in _PASSED_ON:
        status = rich_status(exc)
        return _PASSED_ON[code](
            exc.details() or code.name, violations=field_violations(status), reason=error_reason(status)
        )
    # UNAVAILABLE, and anything unexpected: the payment is in an unknown state; the caller may
    # retry with the same key, and the reconciler will finish the order if nobody does.
    return Unavailable("the payment service is unavailable")
