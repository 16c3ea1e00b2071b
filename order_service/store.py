"""Orders, their durable event log, and REST idempotency keys, in the order service's database.

An order is stored whole as its protobuf `Order` (the `doc` column) beside the columns that
queries need. Every change writes the new version into `order_events` in the same transaction,
so the log is exactly the sequence of versions the order went through.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Index,
    LargeBinary,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    delete,
    insert,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncConnection

from common.db import Database
from common.timestamps import from_timestamp
from order_service.domain import status_name
from shop.order.v1 import order_pb2 as pb

metadata = MetaData()

orders = Table(
    "orders",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("customer_id", String(64), nullable=False),
    Column("status", String(32), nullable=False),
    # Kept for the charge until the payment service has answered (then it is in `doc` too).
    Column("payment_method", String(64), nullable=False),
    Column("payment_id", String(40), unique=True),
    Column("action_expires_at", DateTime(timezone=True)),
    Column("version", BigInteger, nullable=False),
    Column("doc", LargeBinary, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Index("ix_orders_customer", "customer_id", "id"),
    Index("ix_orders_status", "status", "id"),
)

order_events = Table(
    "order_events",
    metadata,
    Column("order_id", String(40), nullable=False),
    Column("version", BigInteger, nullable=False),
    Column("doc", LargeBinary, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    PrimaryKeyConstraint("order_id", "version"),
)

idempotency_keys = Table(
    "idempotency_keys",
    metadata,
    Column("scope", String(100), nullable=False),
    Column("key", String(255), nullable=False),
    Column("fingerprint", String(64), nullable=False),
    Column("order_id", String(40)),
    Column("response", LargeBinary),
    Column("created_at", DateTime(timezone=True), nullable=False),
    PrimaryKeyConstraint("scope", "key"),
)

IDEMPOTENCY_TTL = timedelta(hours=24)


@dataclass(frozen=True)
class IdempotencyRecord:
    scope: str
    key: str
    fingerprint: str
    order_id: str | None = None
    response: bytes | None = None


def _row_values(order: pb.Order) -> dict[str, object]:
    expires = order.payment.next_action.expires_at if order.payment.HasField("next_action") else None
    return {
        "customer_id": order.customer_id,
        "status": status_name(order.status),
        "payment_id": order.payment.id or None,
        "action_expires_at": from_timestamp(expires) if expires is not None else None,
        "version": order.version,
        "doc": order.SerializeToString(),
        "updated_at": from_timestamp(order.updated_at),
    }


class OrderStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def start(self) -> None:
        await self.db.create_schema(metadata)

    async def create(
        self, conn: AsyncConnection, order: pb.Order, payment_method: str, idempotency: IdempotencyRecord | None
    ) -> None:
        await conn.execute(insert(orders).values(id=order.id, payment_method=payment_method, **_row_values(order)))
        await self._append_event(conn, order)
        if idempotency is not None:
            await conn.execute(
                delete(idempotency_keys).where(
                    idempotency_keys.c.scope == idempotency.scope, idempotency_keys.c.key == idempotency.key
                )
            )
            await conn.execute(insert(idempotency_keys).values(**vars(idempotency), created_at=datetime.now(UTC)))

    async def save(self, conn: AsyncConnection, order: pb.Order) -> None:
        """Write a new version of the order and its event (the caller bumped `version`)."""
        await conn.execute(update(orders).where(orders.c.id == order.id).values(**_row_values(order)))
        await self._append_event(conn, order)

    async def _append_event(self, conn: AsyncConnection, order: pb.Order) -> None:
        await conn.execute(
            insert(order_events).values(
                order_id=order.id,
                version=order.version,
                doc=order.SerializeToString(),
                created_at=from_timestamp(order.updated_at),
            )
        )

    async def get(self, order_id: str, conn: AsyncConnection | None = None) -> pb.Order | None:
        return await self._one(select(orders.c.doc).where(orders.c.id == order_id), conn)

    async def by_payment(self, payment_id: str, conn: AsyncConnection | None = None) -> pb.Order | None:
        return await self._one(select(orders.c.doc).where(orders.c.payment_id == payment_id), conn)

    async def _one(self, query: object, conn: AsyncConnection | None) -> pb.Order | None:
        if conn is not None:
            row = (await conn.execute(query.with_for_update())).first()  # type: ignore[attr-defined]
        else:
            async with self.db.read() as read_conn:
                row = (await read_conn.execute(query)).first()  # type: ignore[call-overload]
        return pb.Order.FromString(row.doc) if row else None

    async def payment_method(self, order_id: str) -> str:
        async with self.db.read() as conn:
            return str(
                (await conn.execute(select(orders.c.payment_method).where(orders.c.id == order_id))).scalar_one()
            )

    async def page(self, customer_id: str, status: str, limit: int, before_id: str | None) -> list[pb.Order]:
        query = select(orders.c.doc).order_by(orders.c.id.desc()).limit(limit)
        if customer_id:
            query = query.where(orders.c.customer_id == customer_id)
        if status:
            query = query.where(orders.c.status == status)
        if before_id:
            query = query.where(orders.c.id < before_id)
        async with self.db.read() as conn:
            rows = (await conn.execute(query)).all()
        return [pb.Order.FromString(row.doc) for row in rows]

    async def events_after(self, order_id: str, version: int) -> list[pb.Order]:
        query = (
            select(order_events.c.doc)
            .where(order_events.c.order_id == order_id, order_events.c.version > version)
            .order_by(order_events.c.version)
        )
        async with self.db.read() as conn:
            rows = (await conn.execute(query)).all()
        return [pb.Order.FromString(row.doc) for row in rows]

    async def ids_with_status(self, status: str) -> list[str]:
        async with self.db.read() as conn:
            rows = (await conn.execute(select(orders.c.id).where(orders.c.status == status))).all()
        return [row.id for row in rows]

    async def ids_expired(self, now: datetime) -> list[str]:
        query = select(orders.c.id).where(orders.c.status == "requires_action", orders.c.action_expires_at <= now)
        async with self.db.read() as conn:
            rows = (await conn.execute(query)).all()
        return [row.id for row in rows]

    async def idempotency(self, scope: str, key: str) -> IdempotencyRecord | None:
        query = select(idempotency_keys).where(
            idempotency_keys.c.scope == scope,
            idempotency_keys.c.key == key,
            idempotency_keys.c.created_at > datetime.now(UTC) - IDEMPOTENCY_TTL,
        )
        async with self.db.read() as conn:
            row = (await conn.execute(query)).first()
        if row is None:
            return None
        return IdempotencyRecord(row.scope, row.key, row.fingerprint, row.order_id, row.response)

    async def remember_response(self, conn: AsyncConnection, record: IdempotencyRecord) -> None:
        """Store the answer to replay for a key, in the transaction of the change it answers."""
        await conn.execute(
            delete(idempotency_keys).where(
                idempotency_keys.c.scope == record.scope, idempotency_keys.c.key == record.key
            )
        )
        await conn.execute(insert(idempotency_keys).values(**vars(record), created_at=datetime.now(UTC)))

    async def forget_old_keys(self) -> int:
        async with self.db.write() as conn:
            result = await conn.execute(
                delete(idempotency_keys).where(idempotency_keys.c.created_at <= datetime.now(UTC) - IDEMPOTENCY_TTL)
            )
        return result.rowcount
