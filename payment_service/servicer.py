"""PaymentService: the handlers behind the generated servicer base class (the article's steps
6-11). Each reads what the wire carries, refuses what is malformed, hands the rest to the
payment service's work in payments.py, and sends back its answer as a message."""

from __future__ import annotations

from typing import Any

import grpc

from common.caller import CallerScope, caller_scope
from common.errors import InvalidArgument
from common.input_limits import (
    CLIENT_SECRET_RE,
    CLIENT_SECRET_RULE,
    CURRENCIES,
    CURRENCY_RULE,
    IDENTIFIER_RE,
    IDENTIFIER_RULE,
    MAX_ORDER_AMOUNT,
    PAYMENT_METHOD_RULE,
    check_identifier,
)
from common.payment_methods import PAYMENT_METHODS
from payment_service.payments import NewCharge, Payments
from shop.payment.v1 import payment_pb2 as pb
from shop.payment.v1 import payment_pb2_grpc

Context = grpc.aio.ServicerContext[Any, Any]

# The payment service's own keys (a charge's, a refund's) come from the order service.
KEY_RULE = "is required (1-255 characters)"


def validate_charge(request: pb.ChargeRequest) -> NewCharge:
    violations: list[tuple[str, str]] = []
    if not IDENTIFIER_RE.match(request.order_id):
        violations.append(("order_id", IDENTIFIER_RULE))
    if not 1 <= request.amount <= MAX_ORDER_AMOUNT:
        violations.append(("amount", f"must be between 1 and {MAX_ORDER_AMOUNT}"))
    if request.currency not in CURRENCIES:
        violations.append(("currency", CURRENCY_RULE))
    if request.payment_method not in PAYMENT_METHODS:
        violations.append(("payment_method", PAYMENT_METHOD_RULE))
    if not 1 <= len(request.idempotency_key) <= 255:
        violations.append(("idempotency_key", KEY_RULE))
    if request.client_secret and not CLIENT_SECRET_RE.match(request.client_secret):
        violations.append(("client_secret", CLIENT_SECRET_RULE))
    if violations:
        raise InvalidArgument("invalid charge request", violations=violations)
    return NewCharge(
        order_id=request.order_id,
        amount=request.amount,
        currency=request.currency,
        payment_method=request.payment_method,
        idempotency_key=request.idempotency_key,
        client_secret=request.client_secret or None,
    )


def _caller(context: Context) -> CallerScope:
    return caller_scope(context.invocation_metadata())


class PaymentServicer(payment_pb2_grpc.PaymentServiceServicer):
    def __init__(self, payments: Payments) -> None:
        self.payments = payments

    async def Charge(self, request: pb.ChargeRequest, context: Context) -> pb.Payment:
        charge = validate_charge(request)
        caller = _caller(context)
        caller.require_account("charge")
        return (await self.payments.charge(charge, caller)).to_proto()

    async def GetPayment(self, request: pb.GetPaymentRequest, context: Context) -> pb.Payment:
        check_identifier("payment_id", request.payment_id)
        return (await self.payments.get(request.payment_id, _caller(context))).to_proto()

    async def ConfirmPayment(self, request: pb.ConfirmPaymentRequest, context: Context) -> pb.Payment:
        check_identifier("payment_id", request.payment_id)
        approve = request.approve if request.HasField("approve") else True
        return (await self.payments.confirm(request.payment_id, approve, _caller(context))).to_proto()

    async def Refund(self, request: pb.RefundRequest, context: Context) -> pb.RefundResponse:
        check_identifier("payment_id", request.payment_id)
        violations: list[tuple[str, str]] = []
        if not 1 <= len(request.idempotency_key) <= 255:
            violations.append(("idempotency_key", KEY_RULE))
        requested = request.amount if request.HasField("amount") else None
        if requested is not None and requested < 1:
            violations.append(("amount", "must be ≥ 1"))
        if violations:
            raise InvalidArgument("invalid refund request", violations=violations)
        caller = _caller(context)
        caller.require_account("refund a payment")
        refund, payment = await self.payments.refund(request.payment_id, requested, request.idempotency_key, caller)
        return pb.RefundResponse(refund=refund.to_proto(), payment=payment.to_proto())

    async def CancelPayment(self, request: pb.CancelPaymentRequest, context: Context) -> pb.Payment:
        check_identifier("payment_id", request.payment_id)
        caller = _caller(context)
        caller.require_account("cancel a payment")
        return (await self.payments.cancel(request.payment_id, caller)).to_proto()
