"""PaymentService: the handlers behind the generated servicer base class (steps 6-11).

Every change of a payment is one transaction that locks the payment's row first, so that
concurrent calls — from any replica of either service — are serialised by the database: a
payment is never refunded beyond what was charged, and never both confirmed and canceled.
"""

from __future__ import annotations

from typing import Any

import grpc

from common.caller import CallerScope, caller_scope
from common.db import Database, Tx
from common.errors import AlreadyExists, FailedPrecondition, InvalidArgument, NotFound, OutOfRange
from common.ids import new_id
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
from common.timestamps import now_us
from payment_service import store
from payment_service.processor import Processor
from payment_service.store import PaymentRecord, RefundRecord
from shop.payment.v1 import payment_pb2 as pb
from shop.payment.v1 import payment_pb2_grpc

Context = grpc.aio.ServicerContext[Any, Any]

REFUNDABLE = ("succeeded", "partially_refunded")
KEY_REUSED = "IDEMPOTENCY_KEY_REUSED"


def _validate_charge(request: pb.ChargeRequest) -> None:
    violations: list[tuple[str, str]] = []
    if not IDENTIFIER_RE.match(request.order_id):
        violations.append(("order_id", IDENTIFIER_RULE))
    if not 1 <= request.amount <= MAX_ORDER_AMOUNT:
        violations.append(("amount", f"must be between 1 and {MAX_ORDER_AMOUNT}"))
    if request.currency not in CURRENCIES:
        violations.append(("currency", CURRENCY_RULE))
    if request.payment_method not in PAYMENT_METHODS:
        violations.append(("payment_method", PAYMENT_METHOD_RULE))
    _check_key(request.idempotency_key, violations)
    if request.client_secret and not CLIENT_SECRET_RE.match(request.client_secret):
        violations.append(("client_secret", CLIENT_SECRET_RULE))
    if violations:
        raise InvalidArgument("invalid charge request", violations=violations)


def _check_key(key: str, violations: list[tuple[str, str]]) -> None:
    if not 1 <= len(key) <= 255:
        violations.append(("idempotency_key", "is required (1-255 characters)"))


def _scope(context: Context) -> CallerScope:
    return caller_scope(context.invocation_metadata())


class PaymentServicer(payment_pb2_grpc.PaymentServiceServicer):
    def __init__(self, db: Database, processor: Processor) -> None:
        self.db = db
        self.processor = processor

    async def charge_once(
        self,
        order_id: str,
        amount: int,
        currency: str,
        payment_method: str,
        key: str,
        *,
        account_id: str | None = None,
        client_secret: str | None = None,
    ) -> PaymentRecord:
        """The payment stored under `key` (or the order's, made under another key); the first
        time, ask the processor and store its answer. (Validated input only. Also what `make
        bench` serves as JSON, so that both hops do the same work.)"""
        existing = await self.db.read(lambda tx: store.by_key_or_order(tx, key, order_id))
        if existing is not None:
            return existing
        now = now_us()
        decision = await self.processor.authorize(payment_method, now, key)
        record = PaymentRecord(
            id=new_id("pay"),
            idempotency_key=key,
            order_id=order_id,
            payment_method=payment_method,
            amount=amount,
            amount_refunded=0,
            currency=currency,
            version=1,
            created_us=now,
            updated_us=now_us(),
            account_id=account_id,
            client_secret=client_secret,
            **vars(decision),
        )

        async def insert(tx: Tx) -> PaymentRecord | None:
            if await store.insert(tx, record):
                return record
            # A concurrent charge with this key (or for this order) got there first.
            return await store.by_key_or_order(tx, key, order_id)

        stored = await self.db.write(insert)
        assert stored is not None
        return stored

    async def Charge(self, request: pb.ChargeRequest, context: Context) -> pb.Payment:
        _validate_charge(request)
        scope = _scope(context)
        scope.require_account("charge")
        payment = await self.charge_once(
            request.order_id,
            request.amount,
            request.currency,
            request.payment_method,
            request.idempotency_key,
            account_id=scope.account_id,
            client_secret=request.client_secret or None,
        )
        if not scope.may_see(payment.account_id or "", ""):
            # Another account's order id or key: say no more than that it cannot be used.
            raise FailedPrecondition("idempotency key already used for a different charge", reason=KEY_REUSED)
        if payment.idempotency_key != request.idempotency_key:
            raise AlreadyExists(f"order {request.order_id} already has payment {payment.id}")
        if (payment.order_id, payment.amount, payment.currency, payment.payment_method) != (
            request.order_id,
            request.amount,
            request.currency,
            request.payment_method,
        ):
            raise FailedPrecondition("idempotency key already used for a different charge", reason=KEY_REUSED)
        return (await self._expire_if_due(payment)).to_proto()

    async def GetPayment(self, request: pb.GetPaymentRequest, context: Context) -> pb.Payment:
        check_identifier("payment_id", request.payment_id)
        payment = await self.db.read(lambda tx: store.by_id(tx, request.payment_id))
        if payment is None or not _in_scope(payment, _scope(context)):
            raise NotFound(f"payment {request.payment_id} not found")
        return (await self._expire_if_due(payment)).to_proto()

    async def ConfirmPayment(self, request: pb.ConfirmPaymentRequest, context: Context) -> pb.Payment:
        check_identifier("payment_id", request.payment_id)
        approve = request.approve if request.HasField("approve") else True
        scope = _scope(context)

        async def answer(tx: Tx) -> tuple[PaymentRecord, bool]:
            payment = await _locked(tx, request.payment_id, scope)
            if payment.status != "requires_action":
                return payment, False
            if _is_expired(payment):
                # Written, then refused below: the expiry stands whatever the caller does next.
                payment = _expired(payment)
            elif approve:
                payment = payment.changed(status="succeeded")
            else:
                payment = payment.changed(
                    status="failed",
                    failure_code="authentication_failed",
                    failure_message="The customer declined the payment.",
                )
            await store.save(tx, payment)
            return payment, payment.failure_code != "expired"

        payment, answered = await self.db.write(answer)
        # A repeat of the same answer (a double tap on the phone) gets the payment as it is.
        if answered or (approve and payment.status in ("succeeded", *REFUNDABLE)):
            return payment.to_proto()
        if not approve and payment.failure_code == "authentication_failed":
            return payment.to_proto()
        raise FailedPrecondition(
            f"payment {payment.id} is {payment.status}"
            + (" (the confirmation expired)" if payment.failure_code == "expired" else "")
            + "; only a payment that requires action can be confirmed"
        )

    async def Refund(self, request: pb.RefundRequest, context: Context) -> pb.RefundResponse:
        check_identifier("payment_id", request.payment_id)
        violations: list[tuple[str, str]] = []
        _check_key(request.idempotency_key, violations)
        requested = request.amount if request.HasField("amount") else None
        if requested is not None and requested < 1:
            violations.append(("amount", "must be ≥ 1"))
        if violations:
            raise InvalidArgument("invalid refund request", violations=violations)
        scope = _scope(context)
        scope.require_account("refund a payment")

        async def refund(tx: Tx) -> tuple[RefundRecord, PaymentRecord]:
            payment = await _locked(tx, request.payment_id, scope)
            done = await store.refund_by_key(tx, request.idempotency_key)
            if done is not None:
                if (done.payment_id, done.requested_amount) != (payment.id, requested):
                    raise FailedPrecondition("idempotency key already used for a different refund", reason=KEY_REUSED)
                return done, payment
            if payment.status not in REFUNDABLE:
                raise FailedPrecondition(
                    f"payment {payment.id} is {payment.status}; only a paid payment can be refunded"
                )
            left = payment.amount - payment.amount_refunded
            amount = left if requested is None else requested
            if amount > left:
                raise OutOfRange(
                    f"refund amount must be between 1 and {left}, what is left of the payment",
                    violations=[("amount", f"must be between 1 and {left}")],
                )
            created = RefundRecord(
                new_id("re"), request.idempotency_key, payment.id, amount, requested, payment.currency, now_us()
            )
            refunded = payment.amount_refunded + amount
            payment = payment.changed(
                amount_refunded=refunded, status="refunded" if refunded == payment.amount else "partially_refunded"
            )
            await store.insert_refund(tx, created)
            await store.save(tx, payment)
            return created, payment

        done, payment = await self.db.write(refund)
        return pb.RefundResponse(refund=done.to_proto(), payment=payment.to_proto())

    async def CancelPayment(self, request: pb.CancelPaymentRequest, context: Context) -> pb.Payment:
        check_identifier("payment_id", request.payment_id)
        scope = _scope(context)
        scope.require_account("cancel a payment")

        async def cancel(tx: Tx) -> PaymentRecord:
            payment = await _locked(tx, request.payment_id, scope)
            if payment.status in ("processing", "requires_action"):
                payment = payment.changed(status="canceled")
                await store.save(tx, payment)
            elif payment.status != "canceled":
                raise FailedPrecondition(f"payment {payment.id} is {payment.status} and cannot be canceled")
            return payment

        return (await self.db.write(cancel)).to_proto()

    async def _expire_if_due(self, payment: PaymentRecord) -> PaymentRecord:
        """A payment nobody confirmed in time fails; it is written when first read after that."""
        if payment.status != "requires_action" or not _is_expired(payment):
            return payment

        async def expire(tx: Tx) -> PaymentRecord:
            current = await _locked(tx, payment.id)
            if current.status != "requires_action":
                return current
            expired = _expired(current)
            await store.save(tx, expired)
            return expired

        return await self.db.write(expire)


def _in_scope(payment: PaymentRecord, scope: CallerScope) -> bool:
    return scope.may_see(payment.account_id or "", payment.client_secret or "")


async def _locked(tx: Tx, payment_id: str, scope: CallerScope | None = None) -> PaymentRecord:
    """The payment, its row locked; NOT_FOUND when there is none or it is outside `scope` (as
    if it did not exist: another account learns nothing about it)."""
    payment = await store.by_id(tx, payment_id, lock=True)
    if payment is None or (scope is not None and not _in_scope(payment, scope)):
        raise NotFound(f"payment {payment_id} not found")
    return payment


def _is_expired(payment: PaymentRecord) -> bool:
    return payment.action_expires_us is not None and payment.action_expires_us <= now_us()


def _expired(payment: PaymentRecord) -> PaymentRecord:
    return payment.changed(
        status="failed",
        failure_code="expired",
        failure_message="The customer did not confirm the payment in time.",
    )
