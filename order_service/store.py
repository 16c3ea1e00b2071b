"""Orders, their durable event log, and the checks the reconciler makes, in the order service's
database (tables: order_service/schema.py).

`OrderStore` is the only way to them: each method is one transaction, named for what it does
(the flows in orders.py call these, never SQL), so a method may change how it does its work —
fewer statements, another engine — without a flow noticing. The idempotency key a request holds
(idempotency.held()) is written in the same transactions: the recovery point with the pending
order, the answer with the change it answers.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache

from common.db import Database, Row, Sql, Tx, reads, writes, writes_one
from common.errors import NotFound
from common.order_status import status_name
from common.timestamps import now_us, us_of
from order_service import events, idempotency
from order_service import single_statements as one
from order_service.changes import LocalChanges
from order_service.domain import CHARGE_CHECK, EXPIRY_CHECK, apply_payment, expiry_check
from shop.order.v1 import order_pb2 as pb
from shop.payment.v1 import payment_pb2

INSERT_ORDER = Sql(
    "INSERT INTO orders (id, customer_id, status, payment_method, payment_id, version, doc, created_us, updated_us,"
    " account_id) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
)
UPDATE_ORDER = Sql(
    "UPDATE orders SET status = $2, payment_id = $3, version = $4, doc = $5, updated_us = $6 WHERE id = $1"
)
INSERT_EVENT = Sql("INSERT INTO order_events (order_id, version, doc, created_us) VALUES ($1, $2, $3, $4)")
GET = Sql("SELECT doc FROM orders WHERE id = $1")
GET_FOR_UPDATE = Sql("SELECT doc FROM orders WHERE id = $1 FOR UPDATE")
GET_WITH_METHOD = Sql("SELECT doc, payment_method FROM orders WHERE id = $1")
BY_PAYMENT = Sql("SELECT doc FROM orders WHERE payment_id = $1")
EVENTS_AFTER = Sql("SELECT doc FROM order_events WHERE order_id = $1 AND version > $2 ORDER BY version")
# PostgreSQL only (the watch safety net of order_service/changes.py).
VERSIONS = Sql("SELECT id, version FROM orders WHERE id = ANY($1)")

ADD_CHECK = Sql(
    "INSERT INTO order_checks (order_id, check_id, due_us) VALUES ($1, $2, $3)"
    " ON CONFLICT (order_id, check_id) DO UPDATE SET due_us = excluded.due_us"
)
DONE_CHECK = Sql("DELETE FROM order_checks WHERE order_id = $1 AND check_id = $2")
# Claim the checks that are due: each is pushed back by the lease, so that no other replica takes
# it while this one works on it; SKIP LOCKED lets concurrent reconcilers take different ones.
CLAIM_CHECKS = Sql(
    "UPDATE order_checks SET due_us = $2 WHERE (order_id, check_id) IN ("
    " SELECT order_id, check_id FROM order_checks WHERE due_us <= $1 ORDER BY due_us LIMIT $3"
    " FOR UPDATE SKIP LOCKED) RETURNING order_id, check_id"
)
CHECKS_BACKLOG = Sql("SELECT count(*) FROM order_checks WHERE due_us <= $1")

PURGE_KEYS = Sql("DELETE FROM idempotency_keys WHERE created_us <= $1")


@cache
def _page_query(filters: tuple[str, ...]) -> Sql:
    """Newest first, with a condition per filter (`account_id =`, `customer_id =`, `status =`,
    `id <`): each combination is its own statement, prepared once."""
    conditions = [f"{condition} ${i}" for i, condition in enumerate(filters, start=2)]
    where = f" WHERE {' AND '.join(conditions)}" if conditions else ""
    return Sql(f"SELECT doc FROM orders{where} ORDER BY id DESC LIMIT $1")


def _order(row: Row | None) -> pb.Order | None:
    return None if row is None else pb.Order.FromString(row["doc"])


class OrderStore:
    def __init__(self, db: Database, changes: LocalChanges) -> None:
        self.db = db
        # Told of every new version, in the transaction that commits it (watch.py follows them).
        self.changes = changes

    # -- reads ---------------------------------------------------------------------------------

    @reads
    async def get(self, tx: Tx, order_id: str) -> pb.Order | None:
        return _order(await tx.fetchrow(GET, order_id))

    @reads
    async def get_with_method(self, tx: Tx, order_id: str) -> tuple[pb.Order, str] | None:
        """The order and the payment method it is charged with."""
        row = await tx.fetchrow(GET_WITH_METHOD, order_id)
        return None if row is None else (pb.Order.FromString(row["doc"]), str(row["payment_method"]))

    @reads
    async def by_payment(self, tx: Tx, payment_id: str) -> pb.Order | None:
        return _order(await tx.fetchrow(BY_PAYMENT, payment_id))

    @reads
    async def page(
        self, tx: Tx, account_id: str | None, customer_id: str, status: str, limit: int, before_id: str | None
    ) -> list[pb.Order]:
        """Newest first; only `account_id`'s orders unless it is None (an internal call)."""
        filters = (
            ("account_id =", account_id),
            ("customer_id =", customer_id),
            ("status =", status),
            ("id <", before_id),
        )
        wanted = [(f, v) for f, v in filters if v]
        rows = await tx.fetch(_page_query(tuple(f for f, _ in wanted)), limit, *(v for _, v in wanted))
        return [pb.Order.FromString(row["doc"]) for row in rows]

    @reads
    async def events_after(self, tx: Tx, order_id: str, version: int) -> list[pb.Order]:
        return [pb.Order.FromString(row["doc"]) for row in await tx.fetch(EVENTS_AFTER, order_id, version)]

    @reads
    async def versions(self, tx: Tx, order_ids: Sequence[str]) -> dict[str, int]:
        return {row["id"]: row["version"] for row in await tx.fetch(VERSIONS, list(order_ids))}

    @reads
    async def checks_backlog(self, tx: Tx) -> int:
        return int(await tx.fetchval(CHECKS_BACKLOG, now_us()))

    # -- the order's changes -------------------------------------------------------------------

    async def add_pending(self, order: pb.Order, payment_method: str, charge_due_us: int) -> None:
        """A new order (pending_payment, version 1) with the check of its charge, durable before
        the charge is sent; under the request's idempotency key, the recovery point."""
        if self.db.is_sqlite:
            await self._add_pending(order, payment_method, charge_due_us)
        else:
            await self._add_pending_in_one(order, payment_method, charge_due_us)

    @writes_one
    async def _add_pending_in_one(self, tx: Tx, order: pb.Order, payment_method: str, charge_due_us: int) -> None:
        # No NOTIFY: nobody can be watching an order that did not exist.
        queued = await one.add_pending(tx, order, payment_method, charge_due_us, idempotency.held())
        if order.account_id:
            events.wake_after_commit(tx, order.account_id, queued)

    @writes
    async def _add_pending(self, tx: Tx, order: pb.Order, payment_method: str, charge_due_us: int) -> None:
        await tx.execute(
            INSERT_ORDER,
            order.id,
            order.customer_id,
            status_name(order.status),
            payment_method,
            order.payment.id or None,
            order.version,
            order.SerializeToString(),
            us_of(order.created_at),
            us_of(order.updated_at),
            order.account_id or None,
        )
        await _append_event(tx, order)
        await tx.execute(ADD_CHECK, order.id, CHARGE_CHECK, charge_due_us)
        if (claim := idempotency.held()) is not None:
            await idempotency.set_order(tx, claim, order.id)
        await self.changes.announce(tx, order.id, order.version)

    async def record(
        self,
        order_id: str,
        payment: payment_pb2.Payment | None,
        *,
        settles: Sequence[str] = (),
        answers: bool = False,
        stored: pb.Order | None = None,
    ) -> pb.Order:
        """In one transaction: take the payment onto the order (a new version, if the payment is
        newer than what the order has), settle the checks the answer stands for, keep the expiry
        check in step with the status, and — `answers`: this is the request's answer — store the
        answer under the request's idempotency key. Watchers hear of it after the commit.

        `stored`: the order as this process stored it. On PostgreSQL, if the payment changes it,
        the change is one statement that applies only if the order is still at that version
        (single_statements.py); if another change came first, the order is read and locked."""
        if stored is not None and payment is not None and not self.db.is_sqlite:
            order = pb.Order()
            order.CopyFrom(stored)
            if apply_payment(order, payment) and await self._record_in_one(order, stored, settles, answers):
                return order
        return await self._record(order_id, payment, settles=settles, answers=answers)

    @writes_one
    async def _record_in_one(
        self, tx: Tx, order: pb.Order, stored: pb.Order, settles: Sequence[str], answers: bool
    ) -> bool:
        """`order`, the next version of `stored`, in one statement; False: the order was not at
        that version any more, and nothing was written."""
        queued = await one.record(tx, order, stored, settles, idempotency.held() if answers else None)
        if queued is None:
            return False
        self.changes.wake_after_commit(tx, order.id)
        if order.account_id:
            events.wake_after_commit(tx, order.account_id, queued)
        return True

    @writes
    async def _record(
        self,
        tx: Tx,
        order_id: str,
        payment: payment_pb2.Payment | None,
        *,
        settles: Sequence[str] = (),
        answers: bool = False,
    ) -> pb.Order:
        order = _order(await tx.fetchrow(GET_FOR_UPDATE, order_id))
        if order is None:
            raise NotFound(f"order {order_id} not found")
        was = order.status
        if payment is not None and apply_payment(order, payment):
            await save_version(tx, order)
            await self.changes.announce(tx, order.id, order.version)
        for check in settles:
            await tx.execute(DONE_CHECK, order_id, check)
        expires, settle_expiry = expiry_check(was, order)
        if expires is not None:
            await tx.execute(ADD_CHECK, order_id, EXPIRY_CHECK, expires)
        elif settle_expiry:
            await tx.execute(DONE_CHECK, order_id, EXPIRY_CHECK)
        if answers and (claim := idempotency.held()) is not None:
            await idempotency.answer(tx, claim, order, payment)
        return order

    # -- checks: what the reconciler asks the payment service about ----------------------------

    @writes
    async def add_check(self, tx: Tx, order_id: str, check_id: str, due_us: int) -> None:
        """Due at `due_us` unless somebody settles it first (an existing check is moved there)."""
        await tx.execute(ADD_CHECK, order_id, check_id, due_us)

    @writes
    async def reschedule_checks(self, tx: Tx, order_id: str, checks: Sequence[str], due_us: int) -> None:
        for check in checks:
            await tx.execute(ADD_CHECK, order_id, check, due_us)

    @writes
    async def settle_checks(self, tx: Tx, order_id: str, checks: Sequence[str]) -> None:
        for check in checks:
            await tx.execute(DONE_CHECK, order_id, check)

    @writes
    async def claim_checks(self, tx: Tx, lease_us: int, limit: int, at_us: int) -> list[tuple[str, str]]:
        """Claim up to `limit` checks due by `at_us`, for `lease_us`."""
        rows = await tx.fetch(CLAIM_CHECKS, at_us, at_us + lease_us, limit)
        return [(row["order_id"], row["check_id"]) for row in rows]

    @writes
    async def purge_keys(self, tx: Tx) -> int:
        """Forget REST idempotency keys older than 24 hours."""
        return await tx.execute(PURGE_KEYS, now_us() - idempotency.TTL_US)


async def save_version(tx: Tx, order: pb.Order) -> None:
    """A new version of the order (`version` bumped by the caller, its row locked) and its event."""
    await tx.execute(
        UPDATE_ORDER,
        order.id,
        status_name(order.status),
        order.payment.id or None,
        order.version,
        order.SerializeToString(),
        us_of(order.updated_at),
    )
    await _append_event(tx, order)


async def _append_event(tx: Tx, order: pb.Order) -> None:
    await tx.execute(INSERT_EVENT, order.id, order.version, order.SerializeToString(), us_of(order.updated_at))
    # The events feed and webhooks (docs/webhooks.md): numbered and queued in this same transaction.
    await events.record(tx, order)
