"""The order flows: create and charge, confirm, cancel, refund, read, and finishing what was left
open. Each reads top to bottom as the steps it takes; the storage is store.py's, the payment
service is reached through payment_client.py, REST idempotency is applied around a flow by the
servicer (idempotency.py).

Rules kept here (and nothing kept in process memory, so any replica may serve any request):
- the order is durable (`pending_payment`, charged with a key derived from it) before `Charge`
  is sent, and every outcome is durable before anybody is told (`changes.announce` at commit);
- changes of one order are serialised by the database: the transaction that records an answer
  of the payment service locks the order's row, and applies the payment only if it is newer
  (its `version`) than the one the order has — so concurrent confirms, cancels and refunds on
  any replicas leave the order agreeing with its payment;
- before a call whose answer could be lost (a charge, a confirm, a cancel, a refund) a check is
  stored, due when the call's deadline has passed; the recording transaction settles it, and if
  nobody does, the reconciler of any replica asks the payment service then (reconciler.py).
"""

from __future__ import annotations

import hashlib
import logging
import secrets
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

from common.caller import INTERNAL, Call, CallerScope
from common.errors import DeadlineExceeded, FailedPrecondition, InvalidArgument, NotFound, ServiceError, Unavailable
from common.ids import new_id
from common.order_status import status_name
from common.timestamps import now_us, timestamp_us
from order_service.domain import CHARGE_CHECK, validate_create, validate_refund
from order_service.payment_client import PaymentClient
from order_service.store import OrderStore
from order_service.watch import watch_order
from shop.order.v1 import order_pb2 as pb
from shop.payment.v1 import payment_pb2

log = logging.getLogger(__name__)

S = pb.OrderStatus

# A check falls due this long after the deadline of the call it stands for.
CHECK_MARGIN_US = 1_000_000
# When the payment service could not be reached at all: ask again this soon.
RETRY_US = 1_000_000
_UNKNOWN_OUTCOME = (Unavailable, DeadlineExceeded)


def new_client_secret(order_id: str) -> str:
    """`<order id>_secret_<32 URL-safe characters>`: 192 random bits, and a name that says what
    it is (so that a secret scanner, or a person reading a URL, recognises one)."""
    return f"{order_id}_secret_{secrets.token_urlsafe(24)}"


def _due_after(timeout: float) -> int:
    """When a check for a call with this deadline falls due."""
    return now_us() + round(timeout * 1_000_000) + CHECK_MARGIN_US


class Orders:
    def __init__(self, store: OrderStore, payments: PaymentClient) -> None:
        self.store = store
        self.payments = payments

    # -- the article's flow: create the order, charge it, record the answer ------------------

    async def create(self, request: pb.CreateOrderRequest, call: Call) -> pb.Order:
        amount = validate_create(request)
        call.caller.require_account("create an order")
        order = _pending_order(request, amount, call.caller)
        await self.store.add_pending(order, request.payment_method, charge_due_us=_due_after(call.timeout))
        payment = await self._charge(order, request.payment_method, call.timeout)
        return await self.store.record(order.id, payment, settles=(CHARGE_CHECK,), answers=True, stored=order)

    async def finish_create(self, order_id: str, call: Call) -> pb.Order:
        """A retry of a create whose first attempt stored the order and gave no answer: finish that
        order (the same charge), rather than make another."""
        return await self._finish_charge(order_id, call.timeout, answers=True)

    async def _charge(self, order: pb.Order, method: str, timeout: float) -> payment_pb2.Payment:
        try:
            return await self.payments.charge(order, method, timeout)
        except Unavailable:
            # Not reached at all: no need to wait for the deadline before asking again.
            await self.store.add_check(order.id, CHARGE_CHECK, now_us() + RETRY_US)
            raise

    async def _finish_charge(self, order_id: str, timeout: float, *, answers: bool = False) -> pb.Order:
        """Charge an order left pending_payment again, with its one key (nothing is charged
        twice), and record the outcome."""
        found = await self.store.get_with_method(order_id)
        if found is None:
            raise NotFound(f"order {order_id} not found")
        order, method = found
        payment = await self._charge(order, method, timeout) if order.status == S.ORDER_STATUS_PENDING_PAYMENT else None
        return await self.store.record(order_id, payment, settles=(CHARGE_CHECK,), answers=answers)

    # -- the customer's answer, cancel, refund -----------------------------------------------

    async def confirm(self, request: pb.ConfirmPaymentRequest, call: Call) -> payment_pb2.Payment:
        approve = request.approve if request.HasField("approve") else True
        order = await self.store.by_payment(request.payment_id)
        if order is None or not call.caller.may_see(order.account_id, order.client_secret):
            raise NotFound(f"payment {request.payment_id} not found")
        async with self._in_doubt(order, call.timeout) as check:
            payment = await self.payments.confirm(request.payment_id, approve, call.timeout, order.account_id)
        await self.store.record(order.id, payment, settles=(check,), answers=True)
        return payment

    async def cancel(self, request: pb.CancelOrderRequest, call: Call) -> pb.Order:
        call.caller.require_account("cancel an order")
        order = await self.get(request.order_id, call.caller)
        if order.status == S.ORDER_STATUS_PENDING_PAYMENT:
            # No answer from the payment service is on record (it was down, or a replica died):
            # learn the charge's outcome first, by charging with the same key.
            order = await self._finish_charge(order.id, call.timeout)
        if order.status == S.ORDER_STATUS_CANCELED:
            return await self.store.record(order.id, None, answers=True)
        if order.status != S.ORDER_STATUS_REQUIRES_ACTION:
            raise FailedPrecondition(
                f"order {order.id} is {status_name(order.status)}; "
                "only an order whose payment has not succeeded can be canceled"
            )
        async with self._in_doubt(order, call.timeout) as check:
            payment = await self.payments.cancel(order.payment.id, call.timeout, order.account_id)
        return await self.store.record(order.id, payment, settles=(check,), answers=True)

    async def refund(self, request: pb.RefundOrderRequest, call: Call) -> pb.Order:
        amount = request.amount if request.HasField("amount") else None
        if amount is not None and amount < 1:
            raise InvalidArgument("invalid refund", violations=[("amount", "must be ≥ 1")])
        call.caller.require_account("refund an order")
        order = await self.get(request.order_id, call.caller)
        validate_refund(order, amount)
        key = _refund_key(order.id, call.idempotency_key)
        async with self._in_doubt(order, call.timeout) as check:
            payment = await self.payments.refund(order.payment.id, amount, key, call.timeout, order.account_id)
        return await self.store.record(order.id, payment, settles=(check,), answers=True)

    @asynccontextmanager
    async def _in_doubt(self, order: pb.Order, timeout: float) -> AsyncIterator[str]:
        """Around a call that changes the order's payment: a check stored first (its id is
        yielded), so that the reconciler asks if the answer is lost; the recording of the answer
        settles it."""
        check = new_id("chk")
        await self.store.add_check(order.id, check, _due_after(timeout))
        try:
            yield check
        except _UNKNOWN_OUTCOME:
            raise  # the check stays: the reconciler asks the payment service once it is due
        except ServiceError:
            # Refused (expired, answered already, refunded meanwhile by another request): our
            # view of the payment may be old. Bring the order up to date, then pass it on.
            await self._refresh(order, timeout, settles=(check,))
            raise

    async def _refresh(self, order: pb.Order, timeout: float, settles: Sequence[str]) -> None:
        try:
            payment = await self.payments.get(order.payment.id, timeout, order.account_id)
            await self.store.record(order.id, payment, settles=settles)
        except ServiceError as exc:
            log.info("could not refresh the order's payment; the reconciler will", extra={"error": exc.message})

    # -- reading -------------------------------------------------------------------------------

    async def get(self, order_id: str, caller: CallerScope = INTERNAL) -> pb.Order:
        """The order; NOT_FOUND also when it is outside the caller's scope, exactly as for an
        order that does not exist, so that another account learns nothing about it."""
        order = await self.store.get(order_id)
        if order is None or not caller.may_see(order.account_id, order.client_secret):
            raise NotFound(f"order {order_id} not found")
        return order

    async def page(
        self, caller: CallerScope, customer_id: str, status: str, limit: int, before_id: str | None
    ) -> list[pb.Order]:
        """Newest first: the account's own orders (all of them for an internal call)."""
        caller.require_account("list orders")
        return await self.store.page(caller.account_id, customer_id, status, limit, before_id)

    def watch(self, order_id: str, after_version: int | None, caller: CallerScope) -> AsyncIterator[pb.OrderEvent]:
        return watch_order(self.store, order_id, after_version, caller)

    # -- the reconciler's work ---------------------------------------------------------------

    async def reconcile(self, order_id: str, checks: Sequence[str], timeout: float) -> None:
        """Bring an order whose checks are due up to date with its payment: charge an order left
        in pending_payment (same key: nothing is charged twice), else read the payment (which
        applies an expiry) and record it."""
        found = await self.store.get_with_method(order_id)
        if found is None:
            await self.store.settle_checks(order_id, checks)
            return
        order, method = found
        payment: payment_pb2.Payment | None = None
        if order.status == S.ORDER_STATUS_PENDING_PAYMENT:
            payment = await self.payments.charge(order, method, timeout)
        elif order.payment.id:
            payment = await self.payments.get(order.payment.id, timeout, order.account_id)
        await self.store.record(order_id, payment, settles=checks)

    async def retry_checks_soon(self, order_id: str, checks: Sequence[str]) -> None:
        await self.store.reschedule_checks(order_id, checks, now_us() + RETRY_US)


def _pending_order(request: pb.CreateOrderRequest, amount: int, caller: CallerScope) -> pb.Order:
    now = timestamp_us(now_us())
    order_id = new_id("ord")
    return pb.Order(
        id=order_id,
        account_id=caller.account_id or "",
        client_secret=new_client_secret(order_id),
        customer_id=request.customer_id,
        status=S.ORDER_STATUS_PENDING_PAYMENT,
        currency=request.currency,
        items=request.items,
        amount=amount,
        version=1,
        created_at=now,
        updated_at=now,
    )


def _refund_key(order_id: str, idempotency_key: str | None) -> str:
    """The payment service's key for a refund: from the request's Idempotency-Key when it has one,
    so that a retry whose first answer was lost refunds once, whatever other refunds came
    between; without one, each request is a refund of its own. (Keys are the account's own, but
    the order is too: no other account's key reaches it.)"""
    suffix = hashlib.sha256(idempotency_key.encode()).hexdigest()[:32] if idempotency_key else new_id("rf")
    return f"{order_id}:refund:{suffix}"
