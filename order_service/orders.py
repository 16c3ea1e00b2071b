"""The order flows: create and charge, confirm, cancel, refund, and finishing what was left open.

Rules kept here (and nothing kept in process memory, so any replica may serve any request):
- the order is durable (`pending_payment`, charged with a key derived from it) before `Charge`
  is sent, and every outcome is durable before anybody is told (`changes.announce` at commit);
- changes of one order are serialised by the database: the transaction that records an answer
  of the payment service locks the order's row, and applies the payment only if it is newer
  (its `version`) than the one the order has — so concurrent confirms, cancels and refunds on
  any replicas leave the order agreeing with its payment;
- before a call whose answer could be lost (a charge, a confirm, a cancel, a refund) a check is
  stored, due when the call's deadline has passed; the recording transaction removes it, and if
  nobody does, the reconciler of any replica asks the payment service then (reconciler.py);
- a REST idempotency key's answer is stored in the transaction of the change it answers.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import secrets
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from functools import partial
from typing import Any, TypeVar

from google.protobuf.message import Message

from common.caller import INTERNAL, CallerScope
from common.db import Database, Tx
from common.errors import (
    DeadlineExceeded,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    OutOfRange,
    ServiceError,
    Unavailable,
)
from common.ids import new_id
from common.timestamps import now_us, timestamp_us, us_of
from order_service import idempotency, store
from order_service.changes import LocalChanges
from order_service.domain import can_move, status_for_payment, status_name, validate_create
from order_service.idempotency import Claim, Stored
from order_service.payment_client import PaymentClient
from order_service.store import CHARGE_CHECK, EXPIRY_CHECK, OrderReads
from shop.order.v1 import order_pb2 as pb
from shop.payment.v1 import payment_pb2

log = logging.getLogger(__name__)

M = TypeVar("M", bound=Message)
S = pb.OrderStatus

# A check falls due this long after the deadline of the call it stands for.
CHECK_MARGIN_US = 1_000_000
# When the payment service could not be reached at all: ask again this soon.
RETRY_US = 1_000_000
_UNKNOWN_OUTCOME = (Unavailable, DeadlineExceeded)


def _us(seconds: float) -> int:
    return round(seconds * 1_000_000)


def new_client_secret(order_id: str) -> str:
    """`<order id>_secret_<32 URL-safe characters>`: 192 random bits, and a name that says what
    it is (so that a secret scanner, or a person reading a URL, recognises one)."""
    return f"{order_id}_secret_{secrets.token_urlsafe(24)}"


class Orders:
    def __init__(self, db: Database, payments: PaymentClient, changes: LocalChanges) -> None:
        self.db = db
        self.reads = OrderReads(db)
        self.payments = payments
        self.changes = changes

    async def get(self, order_id: str, scope: CallerScope = INTERNAL) -> pb.Order:
        """The order; NOT_FOUND also when it is outside `scope`, exactly as for an order that does
        not exist, so that another account learns nothing about it."""
        order = await self.reads.get(order_id)
        if order is None or not scope.may_see(order.account_id, order.client_secret):
            raise NotFound(f"order {order_id} not found")
        return order

    # -- creating and charging ---------------------------------------------------------------

    async def create(
        self, request: pb.CreateOrderRequest, key: str | None, timeout: float, scope: CallerScope = INTERNAL
    ) -> tuple[pb.Order, bool]:
        amount = validate_create(request)
        scope.require_account("create an order")

        async def run(held: Claim | None) -> pb.Order:
            if held is not None and held.order_id:
                # An earlier attempt stored the order but gave no answer: finish it, same charge.
                return await self._finish_charge(held.order_id, timeout, held)
            now = now_us()
            order_id = new_id("ord")
            order = pb.Order(
                id=order_id,
                account_id=scope.account_id or "",
                client_secret=new_client_secret(order_id),
                customer_id=request.customer_id,
                status=S.ORDER_STATUS_PENDING_PAYMENT,
                currency=request.currency,
                items=request.items,
                amount=amount,
                version=1,
                created_at=timestamp_us(now),
                updated_at=timestamp_us(now),
            )

            async def store_order(tx: Tx) -> None:
                await store.insert(tx, order, request.payment_method)
                await store.add_check(tx, order.id, CHARGE_CHECK, now + _us(timeout) + CHECK_MARGIN_US)
                if held is not None:
                    await idempotency.set_order(tx, held, order.id)
                await self.changes.announce(tx, order.id, order.version)

            await self.db.write(store_order)
            # The order and its method are in hand: charge without reading them back.
            payment = await self._charge(order, request.payment_method, timeout)
            return await self._record(order.id, payment, held, done=(CHARGE_CHECK,))

        return await self._once(scope.idempotency_prefix() + "CreateOrder", key, request, pb.Order, run, timeout)

    async def _finish_charge(self, order_id: str, timeout: float, held: Claim | None) -> pb.Order:
        found = await self.reads.get_with_method(order_id)
        if found is None:
            raise NotFound(f"order {order_id} not found")
        order, method = found
        if order.status != S.ORDER_STATUS_PENDING_PAYMENT:
            return await self._record(order_id, None, held, done=(CHARGE_CHECK,))
        return await self._record(order_id, await self._charge(order, method, timeout), held, done=(CHARGE_CHECK,))

    async def _charge(self, order: pb.Order, method: str, timeout: float) -> payment_pb2.Payment:
        try:
            return await self.payments.charge(order, method, timeout)
        except Unavailable:
            # Not reached at all: no need to wait for the deadline before asking again.
            await self.db.write(lambda tx: store.add_check(tx, order.id, CHARGE_CHECK, now_us() + RETRY_US))
            raise

    # -- the customer's answer, cancel, refund -----------------------------------------------

    async def confirm(
        self, request: pb.ConfirmPaymentRequest, key: str | None, timeout: float, scope: CallerScope = INTERNAL
    ) -> tuple[payment_pb2.Payment, bool]:
        approve = request.approve if request.HasField("approve") else True

        async def run(held: Claim | None) -> payment_pb2.Payment:
            order = await self.reads.by_payment(request.payment_id)
            if order is None or not scope.may_see(order.account_id, order.client_secret):
                raise NotFound(f"payment {request.payment_id} not found")
            call = lambda: self.payments.confirm(request.payment_id, approve, timeout, order.account_id)  # noqa: E731
            _, payment = await self._change_payment(order, call, timeout, held, answer_with_payment=True)
            return payment

        scope_name = f"{scope.idempotency_prefix()}ConfirmPayment:{request.payment_id}"
        return await self._once(scope_name, key, request, payment_pb2.Payment, run, timeout)

    async def cancel(
        self, request: pb.CancelOrderRequest, key: str | None, timeout: float, scope: CallerScope = INTERNAL
    ) -> tuple[pb.Order, bool]:
        scope.require_account("cancel an order")

        async def run(held: Claim | None) -> pb.Order:
            order = await self.get(request.order_id, scope)
            if order.status == S.ORDER_STATUS_PENDING_PAYMENT:
                # No answer from the payment service is on record (it was down, or a replica died):
                # learn the charge's outcome first, by charging with the same key.
                order = await self._finish_charge(order.id, timeout, None)
            if order.status == S.ORDER_STATUS_CANCELED:
                return await self._record(order.id, None, held)
            if order.status != S.ORDER_STATUS_REQUIRES_ACTION:
                raise FailedPrecondition(
                    f"order {order.id} is {status_name(order.status)}; "
                    "only an order whose payment has not succeeded can be canceled"
                )
            call = lambda: self.payments.cancel(order.payment.id, timeout, order.account_id)  # noqa: E731
            recorded, _ = await self._change_payment(order, call, timeout, held)
            return recorded

        scope_name = f"{scope.idempotency_prefix()}CancelOrder:{request.order_id}"
        return await self._once(scope_name, key, request, pb.Order, run, timeout)

    async def refund(
        self, request: pb.RefundOrderRequest, key: str | None, timeout: float, scope: CallerScope = INTERNAL
    ) -> tuple[pb.Order, bool]:
        amount = request.amount if request.HasField("amount") else None
        if amount is not None and amount < 1:
            raise InvalidArgument("invalid refund", violations=[("amount", "must be ≥ 1")])
        scope.require_account("refund an order")

        async def run(held: Claim | None) -> pb.Order:
            order = await self.get(request.order_id, scope)
            if order.status not in (S.ORDER_STATUS_PAID, S.ORDER_STATUS_PARTIALLY_REFUNDED):
                raise FailedPrecondition(
                    f"order {order.id} is {status_name(order.status)}; only a paid order can be refunded"
                )
            left = order.amount - order.amount_refunded
            if amount is not None and amount > left:
                raise OutOfRange(
                    f"refund amount {amount} is above the {left} left to refund",
                    violations=[("amount", f"must be ≤ {left}")],
                )
            # The payment service's key for this refund: from the Idempotency-Key when there is
            # one, so that a retry whose first answer was lost refunds once, whatever other
            # refunds came between; without one, each request is a refund of its own. (Keys are
            # the account's own, but the order is too: no other account's key reaches it.)
            suffix = hashlib.sha256(key.encode()).hexdigest()[:32] if key is not None else new_id("rf")
            refund_key = f"{order.id}:refund:{suffix}"
            call = lambda: self.payments.refund(  # noqa: E731
                order.payment.id, amount, refund_key, timeout, order.account_id
            )
            recorded, _ = await self._change_payment(order, call, timeout, held)
            return recorded

        scope_name = f"{scope.idempotency_prefix()}RefundOrder:{request.order_id}"
        return await self._once(scope_name, key, request, pb.Order, run, timeout)

    async def _change_payment(
        self,
        order: pb.Order,
        call: Callable[[], Awaitable[payment_pb2.Payment]],
        timeout: float,
        held: Claim | None,
        *,
        answer_with_payment: bool = False,
    ) -> tuple[pb.Order, payment_pb2.Payment]:
        """Ask the payment service to change the order's payment, with a check stored first in
        case the answer is lost; record the answer."""
        check = new_id("chk")
        due = now_us() + _us(timeout) + CHECK_MARGIN_US
        await self.db.write(lambda tx: store.add_check(tx, order.id, check, due))
        try:
            payment = await call()
        except _UNKNOWN_OUTCOME:
            raise  # the check stays: the reconciler asks the payment service once it is due
        except ServiceError:
            # Refused (expired, answered already, refunded meanwhile by another request): our
            # view of the payment may be old. Bring the order up to date, then pass it on.
            await self._refresh(order, timeout, done=(check,))
            raise
        recorded = await self._record(
            order.id, payment, held, done=(check,), response=payment if answer_with_payment else None
        )
        return recorded, payment

    async def _refresh(self, order: pb.Order, timeout: float, done: Sequence[str]) -> None:
        try:
            payment = await self.payments.get(order.payment.id, timeout, order.account_id)
            await self._record(order.id, payment, None, done=done)
        except ServiceError as exc:
            log.info("could not refresh the order's payment; the reconciler will", extra={"error": exc.message})

    # -- the reconciler's work ---------------------------------------------------------------

    async def reconcile(self, order_id: str, checks: Sequence[str], timeout: float) -> None:
        """Bring an order whose checks are due up to date with its payment: charge an order left
        in pending_payment (same key: nothing is charged twice), else read the payment (which
        applies an expiry) and record it."""
        found = await self.reads.get_with_method(order_id)
        if found is None:
            await self.db.write(lambda tx: _done_checks(tx, order_id, checks))
            return
        order, method = found
        payment: payment_pb2.Payment | None = None
        if order.status == S.ORDER_STATUS_PENDING_PAYMENT:
            payment = await self.payments.charge(order, method, timeout)
        elif order.payment.id:
            payment = await self.payments.get(order.payment.id, timeout, order.account_id)
        await self._record(order_id, payment, None, done=checks)

    async def retry_checks_soon(self, order_id: str, checks: Sequence[str]) -> None:
        due = now_us() + RETRY_US

        async def reschedule(tx: Tx) -> None:
            for check in checks:
                await store.add_check(tx, order_id, check, due)

        await self.db.write(reschedule)

    # -- shared mechanics --------------------------------------------------------------------

    async def _record(
        self,
        order_id: str,
        payment: payment_pb2.Payment | None,
        held: Claim | None,
        *,
        done: Sequence[str] = (),
        response: Message | None = None,
    ) -> pb.Order:
        """In one transaction: apply the payment to the order (a new version if it is newer than
        what the order has), settle the checks `done`, keep the expiry check in step with the
        status, and store the idempotent answer. Watchers hear of it after the commit."""

        async def record(tx: Tx) -> pb.Order:
            order = await store.locked(tx, order_id)
            if order is None:
                raise NotFound(f"order {order_id} not found")
            was = order.status
            if payment is not None and _apply(order, payment):
                await store.save(tx, order)
                await self.changes.announce(tx, order.id, order.version)
            await _done_checks(tx, order_id, done)
            if order.status == S.ORDER_STATUS_REQUIRES_ACTION and order.payment.HasField("next_action"):
                # Due when the confirmation window ends (and not in the past: a payment service
                # whose clock is behind ours answers "not yet" — ask again a little later).
                expires = max(us_of(order.payment.next_action.expires_at), now_us() + RETRY_US)
                await store.add_check(tx, order_id, EXPIRY_CHECK, expires)
            elif was == S.ORDER_STATUS_REQUIRES_ACTION:
                await store.done_check(tx, order_id, EXPIRY_CHECK)
            if held is not None:
                await idempotency.answer(tx, held, response or order)
            return order

        return await self.db.write(record)

    async def _once(
        self,
        scope: str,
        key: str | None,
        request: Message,
        response_type: type[M],
        run: Callable[[Claim | None], Awaitable[M]],
        timeout: float,
    ) -> tuple[M, bool]:
        """Run `run` once per idempotency key (see idempotency.py); returns the answer and whether
        it was replayed. Invalid input was refused before this: it is never stored."""
        if key is None:
            return await run(None), False
        digest = idempotency.fingerprint(scope, request)
        lease = _us(timeout) + CHECK_MARGIN_US
        outcome = await self.db.write(lambda tx: idempotency.claim(tx, scope, key, digest, lease))
        if isinstance(outcome, Stored):
            return outcome.replay(response_type), True
        try:
            return await run(outcome), False
        except _UNKNOWN_OUTCOME:
            await self._settle_key(idempotency.release, outcome)
            raise
        except ServiceError as error:
            await self._settle_key(partial(_answer_error, error=error), outcome)
            raise
        except (Exception, asyncio.CancelledError):
            # A bug, or the caller went away: nothing to replay; a retry takes over at once.
            await self._settle_key(idempotency.release, outcome)
            raise

    async def _settle_key(self, write: Callable[[Tx, Claim], Coroutine[Any, Any, None]], held: Claim) -> None:
        try:
            await self.db.write(lambda tx: write(tx, held))
        except ServiceError as exc:  # the lease runs out by itself
            log.warning("could not settle an idempotency key", extra={"error": exc.message})


async def _answer_error(tx: Tx, held: Claim, *, error: ServiceError) -> None:
    await idempotency.answer_error(tx, held, error)


async def _done_checks(tx: Tx, order_id: str, checks: Sequence[str]) -> None:
    for check in checks:
        await store.done_check(tx, order_id, check)


def _apply(order: pb.Order, payment: payment_pb2.Payment) -> bool:
    """Take the payment's state onto the order if it is newer; True if the order changed."""
    if order.HasField("payment") and payment.version <= order.payment.version:
        return False
    status = status_for_payment(payment)
    if status != order.status and not can_move(order.status, status):
        log.warning(
            "payment state does not fit the order",
            extra={"order_id": order.id, "order_status": status_name(order.status), "payment_status": payment.status},
        )
        return False
    order.status = status
    order.payment.CopyFrom(payment)
    order.amount_refunded = payment.amount_refunded
    order.version += 1
    order.updated_at.CopyFrom(timestamp_us(now_us()))
    return True
