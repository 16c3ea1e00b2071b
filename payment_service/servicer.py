"""PaymentService: the handlers behind the generated servicer base class (steps 6-11)."""

from __future__ import annotations

from typing import Any

import grpc

from common.errors import FailedPrecondition, InvalidArgument, NotFound, OutOfRange
from common.ids import new_id
from common.limits import CURRENCIES, IDENTIFIER_RE, MAX_ORDER_AMOUNT, check_identifier
from common.payment_methods import PAYMENT_METHODS
from common.timestamps import utcnow
from payment_service.processor import Processor
from payment_service.store import PaymentRecord, PaymentStore, RefundRecord
from shop.payment.v1 import payment_pb2 as pb
from shop.payment.v1 import payment_pb2_grpc

Context = grpc.aio.ServicerContext[Any, Any]

REFUNDABLE = ("succeeded", "partially_refunded")


def _validate_charge(request: pb.ChargeRequest) -> None:
    violations: list[tuple[str, str]] = []
    if not IDENTIFIER_RE.match(request.order_id):
        violations.append(("order_id", "must be 1-64 characters of [A-Za-z0-9_.:-]"))
    if not 1 <= request.amount <= MAX_ORDER_AMOUNT:
        violations.append(("amount", f"must be between 1 and {MAX_ORDER_AMOUNT}"))
    if request.currency not in CURRENCIES:
        violations.append(("currency", "must be an ISO 4217 currency code"))
    if request.payment_method not in PAYMENT_METHODS:
        violations.append(("payment_method", "unknown payment method"))
    if not 1 <= len(request.idempotency_key) <= 255:
        violations.append(("idempotency_key", "is required (1-255 characters)"))
    if violations:
        raise InvalidArgument("invalid charge request", violations=violations)


class PaymentServicer(payment_pb2_grpc.PaymentServiceServicer):
    def __init__(self, store: PaymentStore, processor: Processor) -> None:
        self.store = store
        self.processor = processor

    async def charge_once(
        self, order_id: str, amount: int, currency: str, payment_method: str, key: str
    ) -> PaymentRecord:
        """The payment stored under `key`; the first time, ask the processor and store its answer.
        (Validated input only. Also what `make bench` serves as JSON, so both hops do the same work.)"""
        existing = await self.store.by_key(key)
        if existing is not None:
            return existing
        now = utcnow()
        decision = await self.processor.authorize(payment_method, now)
        return await self.store.insert(
            PaymentRecord(
                id=new_id("pay"),
                idempotency_key=key,
                order_id=order_id,
                payment_method=payment_method,
                amount=amount,
                amount_refunded=0,
                currency=currency,
                created_at=now,
                updated_at=utcnow(),
                **vars(decision),
            )
        )

    async def Charge(self, request: pb.ChargeRequest, context: Context) -> pb.Payment:
        _validate_charge(request)
        existing = await self.charge_once(
            request.order_id, request.amount, request.currency, request.payment_method, request.idempotency_key
        )
        if (existing.order_id, existing.amount, existing.currency, existing.payment_method) != (
            request.order_id,
            request.amount,
            request.currency,
            request.payment_method,
        ):
            raise FailedPrecondition(
                "idempotency key already used for a different charge", reason="IDEMPOTENCY_KEY_REUSED"
            )
        return (await self._expire_if_due(existing)).to_proto()

    async def GetPayment(self, request: pb.GetPaymentRequest, context: Context) -> pb.Payment:
        return (await self._expire_if_due(await self._get(request.payment_id))).to_proto()

    async def ConfirmPayment(self, request: pb.ConfirmPaymentRequest, context: Context) -> pb.Payment:
        approve = request.approve if request.HasField("approve") else True
        async with self.store.db.write() as conn:
            payment = await self._get(request.payment_id, conn)
            if payment.status == "requires_action" and self._is_expired(payment):
                payment = self._expired(payment)
                await self.store.save(conn, payment)
            elif payment.status == "requires_action":
                payment = (
                    payment.changed(status="succeeded", updated_at=utcnow())
                    if approve
                    else payment.changed(
                        status="failed",
                        failure_code="authentication_failed",
                        failure_message="The customer declined the payment.",
                        updated_at=utcnow(),
                    )
                )
                await self.store.save(conn, payment)
                return payment.to_proto()
        # A repeat of the same answer (a double tap on the phone) gets the payment as it is.
        if (approve and payment.status in ("succeeded", *REFUNDABLE)) or (
            not approve and payment.failure_code == "authentication_failed"
        ):
            return payment.to_proto()
        raise FailedPrecondition(
            f"payment {payment.id} is {payment.status}"
            + (" (the confirmation expired)" if payment.failure_code == "expired" else "")
            + "; only a payment that requires action can be confirmed"
        )

    async def Refund(self, request: pb.RefundRequest, context: Context) -> pb.RefundResponse:
        if not 1 <= len(request.idempotency_key) <= 255:
            raise InvalidArgument(
                "invalid refund request", violations=[("idempotency_key", "is required (1-255 characters)")]
            )
        async with self.store.db.write() as conn:
            payment = await self._get(request.payment_id, conn)
            refund = await self.store.refund_by_key(request.idempotency_key, conn)
            if refund is not None:
                if refund.payment_id != payment.id:
                    raise FailedPrecondition(
                        "idempotency key already used for a different refund", reason="IDEMPOTENCY_KEY_REUSED"
                    )
                return pb.RefundResponse(refund=refund.to_proto(), payment=payment.to_proto())
            if payment.status not in REFUNDABLE:
                raise FailedPrecondition(
                    f"payment {payment.id} is {payment.status}; only a paid payment can be refunded"
                )
            left = payment.amount - payment.amount_refunded
            amount = request.amount if request.HasField("amount") else left
            if not 1 <= amount <= left:
                raise OutOfRange(
                    f"refund amount must be between 1 and {left}, what is left of the payment",
                    violations=[("amount", f"must be between 1 and {left}")],
                )
            now = utcnow()
            refund = RefundRecord(new_id("re"), request.idempotency_key, payment.id, amount, payment.currency, now)
            refunded = payment.amount_refunded + amount
            payment = payment.changed(
                amount_refunded=refunded,
                status="refunded" if refunded == payment.amount else "partially_refunded",
                updated_at=now,
            )
            await self.store.insert_refund(conn, refund)
            await self.store.save(conn, payment)
        return pb.RefundResponse(refund=refund.to_proto(), payment=payment.to_proto())

    async def CancelPayment(self, request: pb.CancelPaymentRequest, context: Context) -> pb.Payment:
        async with self.store.db.write() as conn:
            payment = await self._get(request.payment_id, conn)
            if payment.status in ("processing", "requires_action"):
                payment = payment.changed(status="canceled", updated_at=utcnow())
                await self.store.save(conn, payment)
            elif payment.status != "canceled":
                raise FailedPrecondition(f"payment {payment.id} is {payment.status} and cannot be canceled")
        return payment.to_proto()

    async def _get(self, payment_id: str, conn: Any = None) -> PaymentRecord:
        check_identifier("payment_id", payment_id)
        payment = await self.store.by_id(payment_id, conn)
        if payment is None:
            raise NotFound(f"payment {payment_id} not found")
        return payment

    @staticmethod
    def _is_expired(payment: PaymentRecord) -> bool:
        return payment.action_expires_at is not None and payment.action_expires_at <= utcnow()

    @staticmethod
    def _expired(payment: PaymentRecord) -> PaymentRecord:
        return payment.changed(
            status="failed",
            failure_code="expired",
            failure_message="The customer did not confirm the payment in time.",
            updated_at=utcnow(),
        )

    async def _expire_if_due(self, payment: PaymentRecord) -> PaymentRecord:
        """A payment nobody confirmed in time fails; it is written when first read after that."""
        if payment.status != "requires_action" or not self._is_expired(payment):
            return payment
        async with self.store.db.write() as conn:
            current = await self._get(payment.id, conn)
            if current.status != "requires_action":
                return current
            expired = self._expired(current)
            await self.store.save(conn, expired)
        return expired
