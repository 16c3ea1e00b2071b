"""Orders, their durable event log, and the checks the reconciler makes, in the order service's
database (tables: order_service/schema.py). Functions that change something take the
transaction (`Tx`) they are part of; the flows in orders.py decide what goes into one.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache

from common.db import Database, Sql, Tx
from common.timestamps import now_us, us_of
from order_service import events
from order_service.domain import status_name
from shop.order.v1 import order_pb2 as pb

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

# The check that stands for a charge in flight, and the one for the end of a confirmation window.
CHARGE_CHECK = "charge"
EXPIRY_CHECK = "expiry"


@cache
def _page_query(filters: tuple[str, ...]) -> Sql:
    """Newest first, with a condition per filter (`account_id =`, `customer_id =`, `status =`,
    `id <`): each combination is its own statement, prepared once."""
    conditions = [f"{condition} ${i}" for i, condition in enumerate(filters, start=2)]
    where = f" WHERE {' AND '.join(conditions)}" if conditions else ""
    return Sql(f"SELECT doc FROM orders{where} ORDER BY id DESC LIMIT $1")


async def insert(tx: Tx, order: pb.Order, payment_method: str) -> None:
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


async def save(tx: Tx, order: pb.Order) -> None:
    """Write a new version of the order and its event (the caller bumped `version`)."""
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


async def locked(tx: Tx, order_id: str) -> pb.Order | None:
    """The order, its row locked until the transaction ends (PostgreSQL; SQLite's single writer
    needs no lock)."""
    row = await tx.fetchrow(GET_FOR_UPDATE, order_id)
    return None if row is None else pb.Order.FromString(row["doc"])


async def add_check(tx: Tx, order_id: str, check_id: str, due_us: int) -> None:
    await tx.execute(ADD_CHECK, order_id, check_id, due_us)


async def done_check(tx: Tx, order_id: str, check_id: str) -> None:
    await tx.execute(DONE_CHECK, order_id, check_id)


class OrderReads:
    """The reads that need no transaction of the caller's."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def get(self, order_id: str) -> pb.Order | None:
        row = await self.db.read(lambda tx: tx.fetchrow(GET, order_id))
        return None if row is None else pb.Order.FromString(row["doc"])

    async def get_with_method(self, order_id: str) -> tuple[pb.Order, str] | None:
        row = await self.db.read(lambda tx: tx.fetchrow(GET_WITH_METHOD, order_id))
        return None if row is None else (pb.Order.FromString(row["doc"]), str(row["payment_method"]))

    async def by_payment(self, payment_id: str) -> pb.Order | None:
        row = await self.db.read(lambda tx: tx.fetchrow(BY_PAYMENT, payment_id))
        return None if row is None else pb.Order.FromString(row["doc"])

    async def page(
        self, account_id: str | None, customer_id: str, status: str, limit: int, before_id: str | None
    ) -> list[pb.Order]:
        """Newest first; only `account_id`'s orders unless it is None (an internal call)."""
        filters = (
            ("account_id =", account_id),
            ("customer_id =", customer_id),
            ("status =", status),
            ("id <", before_id),
        )
        wanted = [(f, v) for f, v in filters if v]
        query = _page_query(tuple(f for f, _ in wanted))
        rows = await self.db.read(lambda tx: tx.fetch(query, limit, *(v for _, v in wanted)))
        return [pb.Order.FromString(row["doc"]) for row in rows]

    async def events_after(self, order_id: str, version: int) -> list[pb.Order]:
        rows = await self.db.read(lambda tx: tx.fetch(EVENTS_AFTER, order_id, version))
        return [pb.Order.FromString(row["doc"]) for row in rows]

    async def versions(self, order_ids: Sequence[str]) -> dict[str, int]:
        rows = await self.db.read(lambda tx: tx.fetch(VERSIONS, list(order_ids)))
        return {row["id"]: row["version"] for row in rows}

    async def claim_checks(self, lease_us: int, limit: int, at_us: int | None = None) -> list[tuple[str, str]]:
        """Claim up to `limit` checks due by `at_us` (now), for `lease_us`."""
        now = now_us() if at_us is None else at_us
        rows = await self.db.write(lambda tx: tx.fetch(CLAIM_CHECKS, now, now + lease_us, limit))
        return [(row["order_id"], row["check_id"]) for row in rows]

    async def backlog(self) -> int:
        return int(await self.db.read(lambda tx: tx.fetchval(CHECKS_BACKLOG, now_us())))
