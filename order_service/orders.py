"""The order flows: create and charge, confirm, cancel, refund, and finishing stuck orders.

Rules kept here:
- the order is durable (`pending_payment`, with the key it will be charged with) before
  `Charge` is sent, and every outcome is durable before anybody is told (the bus);
- one change at a time per order (a per-order lock), so that concurrent cancels, refunds and
  confirmations of one order see each other's results;
- a REST idempotency key's answer is stored in the transaction of the change it answers.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import replace
from typing import TypeVar

from google.protobuf.message import Message

from common.errors import (
    Aborted,
    DeadlineExceeded,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    OutOfRange,
    Unavailable,
)
from common.ids import new_id
from common.timestamps import to_timestamp, utcnow
from order_service.domain import can_move, status_for_payment, status_name, validate_create
from order_service.payments import PaymentClient
from order_service.store import IdempotencyRecord, OrderStore
from order_service.watch import OrderBus
from shop.order.v1 import order_pb2 as pb
from shop.payment.v1 import payment_pb2

log = logging.getLogger(__name__)

M = TypeVar("M", bound=Message)
S = pb.OrderStatus


def fingerprint(scope: str, request: Message) -> str:
    return hashlib.sha256(scope.encode() + b"\0" + request.SerializeToString(deterministic=True)).hexdigest()


def _newer(a: payment_pb2.Payment, b: payment_pb2.Payment) -> bool:
    return (a.updated_at.seconds, a.updated_at.nanos) >= (b.updated_at.seconds, b.updated_at.nanos)


class Orders:
    def __init__(self, store: OrderStore, payments: PaymentClient, bus: OrderBus) -> None:
        self.store = store
        self.payments = payments
        self.bus = bus
        self._locks: dict[str, _OrderLock] = {}
        self._claimed: set[tuple[str, str]] = set()
        # Orders whose confirmation or cancellation got no answer from the payment service (it
        # was down, slow, or died after its commit): the payment may have changed without the
        # order. The reconciler asks again; at start it adds every order in requires_action,
        # since a crash of this process forgets the set.
        self.in_doubt: set[str] = set()

    # -- reading -----------------------------------------------------------------------------

    async def get(self, order_id: str) -> pb.Order:
        order = await self.store.get(order_id)
        if order is None:
            raise NotFound(f"order {order_id} not found")
        return order

    # -- creating and charging ---------------------------------------------------------------

    async def create(self, request: pb.CreateOrderRequest, key: str | None, timeout: float) -> tuple[pb.Order, bool]:
        amount = validate_create(request)

        async def run(record: IdempotencyRecord | None) -> pb.Order:
            if record is not None and record.order_id:
                # The first attempt stored the order but did not finish: finish it, same charge key.
                return await self._charge(record.order_id, timeout, record)
            order_id = new_id("ord")
            now = to_timestamp(utcnow())
            order = pb.Order(
                id=order_id,
                customer_id=request.customer_id,
                status=S.ORDER_STATUS_PENDING_PAYMENT,
                currency=request.currency,
                items=request.items,
                amount=amount,
                version=1,
                created_at=now,
                updated_at=now,
            )
            async with self._lock(order_id):
                async with self.store.db.write() as conn:
                    await self.store.create(
                        conn, order, request.payment_method, replace(record, order_id=order_id) if record else None
                    )
                self.bus.publish(order_id)
                # The order and its method are in hand: charge without reading them back.
                payment = await self.payments.charge(order, request.payment_method, timeout)
                return await self._record(order_id, payment, record)

        return await self._once("CreateOrder", key, request, pb.Order, run)

    async def _charge(self, order_id: str, timeout: float, record: IdempotencyRecord | None) -> pb.Order:
        async with self._lock(order_id):
            return await self._charge_locked(order_id, timeout, record)

    async def _charge_locked(self, order_id: str, timeout: float, record: IdempotencyRecord | None) -> pb.Order:
        order = await self.get(order_id)
        if order.status != S.ORDER_STATUS_PENDING_PAYMENT:
            return await self._record(order_id, None, record)
        method = await self.store.payment_method(order_id)
        payment = await self.payments.charge(order, method, timeout)
        return await self._record(order_id, payment, record)

    async def finish_pending(self, order_id: str, timeout: float) -> None:
        """For the reconciler: charge an order left in pending_payment, unless one is running."""
        if self._is_busy(order_id):
            return
        await self._charge(order_id, timeout, None)

    async def refresh_payment(self, order_id: str, timeout: float) -> pb.Order:
        """Ask the payment service for the payment's state (which applies an expiry) and record it."""
        async with self._lock(order_id):
            order = await self.get(order_id)
            if not order.payment.id:
                return order
            return await self._record(order_id, await self.payments.get(order.payment.id, timeout), None)

    # -- the customer's answer, cancel, refund -----------------------------------------------

    async def confirm(
        self, request: pb.ConfirmPaymentRequest, key: str | None, timeout: float
    ) -> tuple[payment_pb2.Payment, bool]:
        order = await self.store.by_payment(request.payment_id)
        if order is None:
            raise NotFound(f"payment {request.payment_id} not found")
        approve = request.approve if request.HasField("approve") else True

        async def run(record: IdempotencyRecord | None) -> payment_pb2.Payment:
            async with self._lock(order.id):
                try:
                    payment = await self.payments.confirm(request.payment_id, approve, timeout)
                except (Unavailable, DeadlineExceeded):
                    self.in_doubt.add(order.id)
                    raise
                except FailedPrecondition:
                    # Expired or already answered: bring the order up to date, then say no.
                    await self._record(order.id, await self.payments.get(request.payment_id, timeout), None)
                    raise
                await self._record(order.id, payment, record, response=payment)
                return payment

        return await self._once(f"ConfirmPayment:{request.payment_id}", key, request, payment_pb2.Payment, run)

    async def cancel(self, request: pb.CancelOrderRequest, key: str | None, timeout: float) -> tuple[pb.Order, bool]:
        async def run(record: IdempotencyRecord | None) -> pb.Order:
            async with self._lock(request.order_id):
                order = await self.get(request.order_id)
                if order.status == S.ORDER_STATUS_PENDING_PAYMENT:
                    # No answer from the payment service is on record (it was down or we
                    # crashed): learn the charge's outcome first, by charging with the same key.
                    order = await self._charge_locked(order.id, timeout, None)
                if order.status == S.ORDER_STATUS_CANCELED:
                    return await self._record(order.id, None, record)
                if order.status != S.ORDER_STATUS_REQUIRES_ACTION:
                    raise FailedPrecondition(
                        f"order {order.id} is {status_name(order.status)}; "
                        "only an order whose payment has not succeeded can be canceled"
                    )
                try:
                    payment = await self.payments.cancel(order.payment.id, timeout)
                except (Unavailable, DeadlineExceeded):
                    self.in_doubt.add(order.id)
                    raise
                except FailedPrecondition:
                    await self._record(order.id, await self.payments.get(order.payment.id, timeout), None)
                    raise
                return await self._record(order.id, payment, record)

        return await self._once(f"CancelOrder:{request.order_id}", key, request, pb.Order, run)

    async def refund(self, request: pb.RefundOrderRequest, key: str | None, timeout: float) -> tuple[pb.Order, bool]:
        if request.HasField("amount") and request.amount < 1:
            raise InvalidArgument("invalid refund", violations=[("amount", "must be ≥ 1")])

        async def run(record: IdempotencyRecord | None) -> pb.Order:
            async with self._lock(request.order_id):
                order = await self.get(request.order_id)
                if order.status not in (S.ORDER_STATUS_PAID, S.ORDER_STATUS_PARTIALLY_REFUNDED):
                    raise FailedPrecondition(
                        f"order {order.id} is {status_name(order.status)}; only a paid order can be refunded"
                    )
                left = order.amount - order.amount_refunded
                amount = request.amount if request.HasField("amount") else None
                if amount is not None and amount > left:
                    raise OutOfRange(
                        f"refund amount {amount} is above the {left} left to refund",
                        violations=[("amount", f"must be ≤ {left}")],
                    )
                # The payment service's key for this refund. From the Idempotency-Key when there is
                # one: a retry whose first answer was lost (a crash between the payment service's
                # refund and our record of it) refunds once, whatever other refunds came between.
                # Without one, from the order's state: the same request in the same state refunds once.
                refund_key = (
                    f"{order.id}:refund:{hashlib.sha256(key.encode()).hexdigest()[:32]}"
                    if key is not None
                    else f"{order.id}:refund:{order.amount_refunded}:{amount if amount is not None else 'rest'}"
                )
                payment = await self.payments.refund(order.payment.id, amount, refund_key, timeout)
                return await self._record(order.id, payment, record)

        return await self._once(f"RefundOrder:{request.order_id}", key, request, pb.Order, run)

    # -- shared mechanics --------------------------------------------------------------------

    async def _record(
        self,
        order_id: str,
        payment: payment_pb2.Payment | None,
        record: IdempotencyRecord | None,
        response: Message | None = None,
    ) -> pb.Order:
        """Apply the payment's state to the order (a new version if anything changed) and store
        the idempotent answer, in one transaction; then tell the watchers."""
        async with self.store.db.write() as conn:
            order = await self.store.get(order_id, conn)
            if order is None:
                raise NotFound(f"order {order_id} not found")
            changed = payment is not None and self._apply(order, payment)
            if changed:
                await self.store.save(conn, order)
            if record is not None:
                answer = (response or order).SerializeToString()
                await self.store.remember_response(conn, replace(record, order_id=order_id, response=answer))
        if changed:
            self.bus.publish(order_id)
        return order

    @staticmethod
    def _apply(order: pb.Order, payment: payment_pb2.Payment) -> bool:
        if order.HasField("payment") and not _newer(payment, order.payment):
            return False
        status = status_for_payment(payment)
        if status != order.status and not can_move(order.status, status):
            log.warning(
                "payment state does not fit the order",
                extra={
                    "order_id": order.id,
                    "order_status": status_name(order.status),
                    "payment_status": payment.status,
                },
            )
            return False
        if status == order.status and order.payment == payment:
            return False
        order.status = status
        order.payment.CopyFrom(payment)
        order.amount_refunded = payment.amount_refunded
        order.version += 1
        order.updated_at.CopyFrom(to_timestamp(utcnow()))
        return True

    async def _once(
        self,
        scope: str,
        key: str | None,
        request: Message,
        response_type: type[M],
        run: Callable[[IdempotencyRecord | None], Awaitable[M]],
    ) -> tuple[M, bool]:
        """Run `run` once per idempotency key: a repeat gets the stored answer (replayed=True),
        a repeat with another request is refused (422), a concurrent repeat gets 409."""
        if key is None:
            return await run(None), False
        claim = (scope, key)
        if claim in self._claimed:
            raise Aborted("a request with this idempotency key is in progress", reason="IDEMPOTENCY_KEY_IN_USE")
        self._claimed.add(claim)
        try:
            digest = fingerprint(scope, request)
            record = await self.store.idempotency(scope, key)
            if record is not None and record.fingerprint != digest:
                raise FailedPrecondition(
                    "this idempotency key was used with a different request", reason="IDEMPOTENCY_KEY_REUSED"
                )
            if record is not None and record.response is not None:
                return response_type.FromString(record.response), True
            return await run(record or IdempotencyRecord(scope, key, digest)), False
        finally:
            self._claimed.discard(claim)

    def _is_busy(self, order_id: str) -> bool:
        return order_id in self._locks

    @asynccontextmanager
    async def _lock(self, order_id: str) -> AsyncIterator[None]:
        entry = self._locks.setdefault(order_id, _OrderLock())
        entry.users += 1
        try:
            async with entry.lock:
                yield
        finally:
            entry.users -= 1
            if entry.users == 0:
                del self._locks[order_id]


class _OrderLock:
    """A lock that exists only while somebody holds or waits for it."""

    def __init__(self) -> None:
        self.lock = asyncio.Lock()
        self.users = 0
