"""The payment service's work: charge, read, confirm, refund, cancel — each change one transaction.

Every change of a payment locks the payment's row first, so that concurrent calls — from any
replica of either service — are serialised by the database: a payment is never refunded beyond
what was charged, and never both confirmed and canceled. A charge is stored under its
idempotency key (and one payment per order): a repeat gets the first payment back, so nothing
is ever charged twice.
"""

from __future__ import annotations

from dataclasses import dataclass

from common.caller import INTERNAL, CallerScope
from common.db import Database, Tx, reads, writes, writes_one
from common.errors import AlreadyExists, FailedPrecondition, NotFound, OutOfRange
from common.ids import new_id
from common.timestamps import now_us
from payment_service import store
from payment_service.processor import Decision, Processor
from payment_service.store import PaymentRecord, RefundRecord

REFUNDABLE = ("succeeded", "partially_refunded")
KEY_REUSED = "IDEMPOTENCY_KEY_REUSED"


@dataclass(frozen=True, slots=True)
class NewCharge:
    """A charge as the order service asks for it (validated by the servicer)."""

    order_id: str
    amount: int
    currency: str
    payment_method: str
    idempotency_key: str
    client_secret: str | None = None


class Payments:
    def __init__(self, db: Database, processor: Processor) -> None:
        self.db = db
        self.processor = processor

    async def charge(self, charge: NewCharge, caller: CallerScope = INTERNAL) -> PaymentRecord:
        """The payment stored under the charge's key. The processor is asked (with the key: a
        repeat is answered the same authorization) and its answer stored in one statement, unless
        the key or the order has a payment already — which is then read, and given back (the same
        key) or refused (another charge). The common case, a new charge, costs one statement."""
        decision = await self.processor.authorize(charge.payment_method, now_us(), charge.idempotency_key)
        payment = _new_payment(charge, caller, decision)
        if not await self._insert(payment):
            # The key or the order has its payment: a retry, or a charge that lost a race.
            found = await self._find(charge.idempotency_key, charge.order_id)
            assert found is not None, "a payment that blocks an insert exists"
            payment = found
        if not caller.may_see(payment.account_id or "", ""):
            # Another account's order id or key: say no more than that it cannot be used.
            raise FailedPrecondition("idempotency key already used for a different charge", reason=KEY_REUSED)
        if payment.idempotency_key != charge.idempotency_key:
            raise AlreadyExists(f"order {charge.order_id} already has payment {payment.id}")
        asked = (charge.order_id, charge.amount, charge.currency, charge.payment_method)
        if (payment.order_id, payment.amount, payment.currency, payment.payment_method) != asked:
            raise FailedPrecondition("idempotency key already used for a different charge", reason=KEY_REUSED)
        return await self._expire_if_due(payment)

    async def get(self, payment_id: str, caller: CallerScope = INTERNAL) -> PaymentRecord:
        payment = await self._get(payment_id)
        if payment is None or not _in_scope(payment, caller):
            raise NotFound(f"payment {payment_id} not found")
        return await self._expire_if_due(payment)

    async def confirm(self, payment_id: str, approve: bool, caller: CallerScope) -> PaymentRecord:
        """The customer's answer to a payment that requires action. The same answer again (a
        double tap on the phone) gets the payment as it is; anything else is refused."""
        payment, answered = await self._answer(payment_id, approve, caller)
        if answered or (approve and payment.status in ("succeeded", *REFUNDABLE)):
            return payment
        if not approve and payment.failure_code == "authentication_failed":
            return payment
        raise FailedPrecondition(
            f"payment {payment.id} is {payment.status}"
            + (" (the confirmation expired)" if payment.failure_code == "expired" else "")
            + "; only a payment that requires action can be confirmed"
        )

    @writes
    async def _answer(self, tx: Tx, payment_id: str, approve: bool, caller: CallerScope) -> tuple[PaymentRecord, bool]:
        """The answer stored, and whether it was taken (False: too late, or answered already)."""
        payment = await _locked(tx, payment_id, caller)
        if payment.status != "requires_action":
            return payment, False
        if _is_expired(payment):
            # Stored, then refused: the expiry stands whatever the caller does next.
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

    @writes
    async def refund(
        self, tx: Tx, payment_id: str, requested: int | None, key: str, caller: CallerScope
    ) -> tuple[RefundRecord, PaymentRecord]:
        """Refund `requested` (None: all that is left) once per key."""
        payment = await _locked(tx, payment_id, caller)
        done = await store.refund_by_key(tx, key)
        if done is not None:
            if (done.payment_id, done.requested_amount) != (payment.id, requested):
                raise FailedPrecondition("idempotency key already used for a different refund", reason=KEY_REUSED)
            return done, payment
        if payment.status not in REFUNDABLE:
            raise FailedPrecondition(f"payment {payment.id} is {payment.status}; only a paid payment can be refunded")
        left = payment.amount - payment.amount_refunded
        amount = left if requested is None else requested
        if amount > left:
            raise OutOfRange(
                f"refund amount must be between 1 and {left}, what is left of the payment",
                violations=[("amount", f"must be between 1 and {left}")],
            )
        refund = RefundRecord(new_id("re"), key, payment.id, amount, requested, payment.currency, now_us())
        refunded = payment.amount_refunded + amount
        payment = payment.changed(
            amount_refunded=refunded, status="refunded" if refunded == payment.amount else "partially_refunded"
        )
        await store.insert_refund(tx, refund)
        await store.save(tx, payment)
        return refund, payment

    @writes
    async def cancel(self, tx: Tx, payment_id: str, caller: CallerScope) -> PaymentRecord:
        payment = await _locked(tx, payment_id, caller)
        if payment.status in ("processing", "requires_action"):
            payment = payment.changed(status="canceled")
            await store.save(tx, payment)
        elif payment.status != "canceled":
            raise FailedPrecondition(f"payment {payment.id} is {payment.status} and cannot be canceled")
        return payment

    async def _expire_if_due(self, payment: PaymentRecord) -> PaymentRecord:
        """A payment nobody confirmed in time fails; it is stored when first read after that."""
        if payment.status != "requires_action" or not _is_expired(payment):
            return payment
        return await self._expire(payment.id)

    @writes
    async def _expire(self, tx: Tx, payment_id: str) -> PaymentRecord:
        current = await _locked(tx, payment_id, INTERNAL)
        if current.status != "requires_action":
            return current
        expired = _expired(current)
        await store.save(tx, expired)
        return expired

    @reads
    async def _find(self, tx: Tx, key: str, order_id: str) -> PaymentRecord | None:
        return await store.by_key_or_order(tx, key, order_id)

    @reads
    async def _get(self, tx: Tx, payment_id: str) -> PaymentRecord | None:
        return await store.by_id(tx, payment_id)

    @writes_one
    async def _insert(self, tx: Tx, payment: PaymentRecord) -> bool:
        return await store.insert(tx, payment)


def _new_payment(charge: NewCharge, caller: CallerScope, decision: Decision) -> PaymentRecord:
    now = now_us()
    return PaymentRecord(
        id=new_id("pay"),
        idempotency_key=charge.idempotency_key,
        order_id=charge.order_id,
        payment_method=charge.payment_method,
        amount=charge.amount,
        amount_refunded=0,
        currency=charge.currency,
        version=1,
        created_us=now,
        updated_us=now,
        account_id=caller.account_id,
        client_secret=charge.client_secret,
        **vars(decision),
    )


def _in_scope(payment: PaymentRecord, caller: CallerScope) -> bool:
    return caller.may_see(payment.account_id or "", payment.client_secret or "")


async def _locked(tx: Tx, payment_id: str, caller: CallerScope) -> PaymentRecord:
    """The payment, its row locked; NOT_FOUND when there is none or it is outside the caller's
    scope (as if it did not exist: another account learns nothing about it)."""
    payment = await store.by_id(tx, payment_id, lock=True)
    if payment is None or not _in_scope(payment, caller):
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

