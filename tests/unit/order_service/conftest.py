"""What the order service's unit tests share: the flows on a real SQLite file, the payment
service replaced by a few lines we control (`FakePayments`), and the idempotency wrapper and the
reconciler around them as the server builds them."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from common.caller import INTERNAL, Call
from common.errors import DeadlineExceeded, FailedPrecondition, Unavailable
from common.ids import new_id
from common.timestamps import now_us, timestamp_us
from order_service.changes import LocalChanges
from order_service.idempotency import Idempotency
from order_service.orders import Orders
from order_service.reconciler import Reconciler
from order_service.server import HISTORY
from order_service.store import OrderStore
from shop.order.v1 import order_pb2 as pb
from shop.payment.v1 import payment_pb2
from tests.unit.databases import migrated

P = payment_pb2


class FakePayments:
    """Keeps payments like the payment service: charges by key, a version per change. It can be
    made to fail, to wait, or to lose the answer to a change it made."""

    def __init__(self) -> None:
        self.by_key: dict[str, payment_pb2.Payment] = {}
        self.calls = 0
        self.called = asyncio.Event()
        self.down = False
        self.gate: asyncio.Event | None = None
        self.refunds: dict[str, int] = {}
        self.lose_next_answer = False

    def _by_id(self, payment_id: str) -> payment_pb2.Payment:
        (payment,) = [p for p in self.by_key.values() if p.id == payment_id]
        return payment

    def _changed(self, payment: payment_pb2.Payment) -> payment_pb2.Payment:
        payment.version += 1
        payment.updated_at.CopyFrom(timestamp_us(now_us()))
        if self.lose_next_answer:
            self.lose_next_answer = False
            raise DeadlineExceeded("the payment service did not answer in time")
        return payment_pb2.Payment.FromString(payment.SerializeToString())

    async def charge(self, order: pb.Order, payment_method: str, timeout: float) -> payment_pb2.Payment:
        self.calls += 1
        self.called.set()
        if self.gate is not None:
            await self.gate.wait()
        if self.down:
            raise Unavailable("the payment service is unavailable")
        key = f"{order.id}:charge"
        if key not in self.by_key:
            waits = payment_method == "pm_wallet_qr"
            status = P.PAYMENT_STATUS_REQUIRES_ACTION if waits else P.PAYMENT_STATUS_SUCCEEDED
            self.by_key[key] = payment_pb2.Payment(
                id=new_id("pay"), order_id=order.id, status=status, amount=order.amount, version=1,
                currency=order.currency, payment_method=payment_method, updated_at=timestamp_us(now_us()),
            )  # fmt: skip
            if status == P.PAYMENT_STATUS_REQUIRES_ACTION:
                self.by_key[key].next_action.expires_at.CopyFrom(timestamp_us(now_us() + 900_000_000))
        return self.by_key[key]

    async def get(self, payment_id: str, timeout: float, account_id: str = "") -> payment_pb2.Payment:
        if self.down:
            raise Unavailable("the payment service is unavailable")
        return self._by_id(payment_id)

    async def confirm(
        self, payment_id: str, approve: bool, timeout: float, account_id: str = ""
    ) -> payment_pb2.Payment:
        payment = self._by_id(payment_id)
        if payment.status != P.PAYMENT_STATUS_REQUIRES_ACTION:
            raise FailedPrecondition("only a payment that requires action can be confirmed")
        payment.status = P.PAYMENT_STATUS_SUCCEEDED if approve else P.PAYMENT_STATUS_FAILED
        payment.ClearField("next_action")
        return self._changed(payment)

    async def cancel(self, payment_id: str, timeout: float, account_id: str = "") -> payment_pb2.Payment:
        payment = self._by_id(payment_id)
        payment.status = P.PAYMENT_STATUS_CANCELED
        payment.ClearField("next_action")
        return self._changed(payment)

    async def refund(
        self, payment_id: str, amount: int | None, key: str, timeout: float, account_id: str = ""
    ) -> payment_pb2.Payment:
        payment = self._by_id(payment_id)
        if key in self.refunds:
            return payment
        self.refunds[key] = amount if amount is not None else payment.amount - payment.amount_refunded
        payment.amount_refunded += self.refunds[key]
        everything = payment.amount_refunded == payment.amount
        payment.status = P.PAYMENT_STATUS_REFUNDED if everything else P.PAYMENT_STATUS_PARTIALLY_REFUNDED
        return self._changed(payment)


@dataclass
class Setup:
    orders: Orders
    fake: FakePayments
    reconciler: Reconciler
    idempotency: Idempotency

    # The changes as the servicer runs them: once per idempotency key (None: no key).

    async def create(self, request: pb.CreateOrderRequest, key: str | None = None) -> tuple[pb.Order, bool]:
        flow, resume = self.orders.create, self.orders.finish_create
        return await self.idempotency.run("CreateOrder", _call(key), request, pb.Order, flow, resume)

    async def cancel(self, request: pb.CancelOrderRequest, key: str | None = None) -> tuple[pb.Order, bool]:
        method = f"CancelOrder:{request.order_id}"
        return await self.idempotency.run(method, _call(key), request, pb.Order, self.orders.cancel)

    async def refund(self, request: pb.RefundOrderRequest, key: str | None = None) -> tuple[pb.Order, bool]:
        method = f"RefundOrder:{request.order_id}"
        return await self.idempotency.run(method, _call(key), request, pb.Order, self.orders.refund)

    async def confirm(self, request: pb.ConfirmPaymentRequest, key: str | None = None) -> tuple[P.Payment, bool]:
        method = f"ConfirmPayment:{request.payment_id}"
        return await self.idempotency.run(method, _call(key), request, P.Payment, self.orders.confirm)

    async def create_during_an_outage(self, key: str) -> str:
        """A create whose charge could not be sent (UNAVAILABLE); the payment service is back
        afterwards. Returns the id of the order it left pending_payment."""
        self.fake.down = True
        with pytest.raises(Unavailable):
            await self.create(create_request(), key)
        (pending_id,) = await pending_ids(self.orders)
        self.fake.down = False
        return pending_id

    async def reconcile_later(self, seconds: float = 60) -> int:
        """A reconciler round as it would run `seconds` from now, when every check is due."""
        return await self.reconciler.run_once(at_us=now_us() + round(seconds * 1_000_000))


@pytest.fixture
async def setup(tmp_path: Path, database_server: str | None) -> AsyncIterator[Setup]:
    async with migrated(HISTORY, tmp_path, database_server) as db:
        fake = FakePayments()
        orders = Orders(OrderStore(db, LocalChanges()), fake)  # type: ignore[arg-type]
        yield Setup(orders, fake, Reconciler(orders, interval_s=1, deadline_s=5), Idempotency(db))


def _call(key: str | None) -> Call:
    return Call(INTERNAL, timeout=5, idempotency_key=key)


def create_request(method: str = "pm_card_visa") -> pb.CreateOrderRequest:
    return pb.CreateOrderRequest(
        customer_id="cus_1", currency="EUR", items=[pb.LineItem(sku="A", quantity=1, unit_price=100)],
        payment_method=method,
    )  # fmt: skip


async def pending_ids(orders: Orders) -> list[str]:
    return [o.id for o in await orders.store.page(None, "", "pending_payment", 100, None)]
