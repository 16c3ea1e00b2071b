"""Payments and refunds in the payment service's own database."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    ForeignKey,
    MetaData,
    String,
    Table,
    insert,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from common.db import Database
from common.timestamps import to_timestamp
from shop.payment.v1 import payment_pb2 as pb

metadata = MetaData()

payments = Table(
    "payments",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("idempotency_key", String(300), nullable=False, unique=True),
    Column("order_id", String(64), nullable=False, index=True),
    Column("status", String(32), nullable=False),
    Column("payment_method", String(64), nullable=False),
    Column("amount", BigInteger, nullable=False),
    Column("amount_refunded", BigInteger, nullable=False, default=0),
    Column("currency", String(3), nullable=False),
    Column("failure_code", String(64)),
    Column("decline_code", String(64)),
    Column("failure_message", String(255)),
    Column("action_expires_at", DateTime(timezone=True)),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

refunds = Table(
    "refunds",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("idempotency_key", String(300), nullable=False, unique=True),
    Column("payment_id", String(40), ForeignKey("payments.id"), nullable=False, index=True),
    Column("amount", BigInteger, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

# Status names as stored, and as the proto enum.
STATUS_TO_PROTO = {
    "processing": pb.PAYMENT_STATUS_PROCESSING,
    "requires_action": pb.PAYMENT_STATUS_REQUIRES_ACTION,
    "succeeded": pb.PAYMENT_STATUS_SUCCEEDED,
    "failed": pb.PAYMENT_STATUS_FAILED,
    "canceled": pb.PAYMENT_STATUS_CANCELED,
    "partially_refunded": pb.PAYMENT_STATUS_PARTIALLY_REFUNDED,
    "refunded": pb.PAYMENT_STATUS_REFUNDED,
}


@dataclass(frozen=True)
class PaymentRecord:
    id: str
    idempotency_key: str
    order_id: str
    status: str
    payment_method: str
    amount: int
    amount_refunded: int
    currency: str
    failure_code: str | None
    decline_code: str | None
    failure_message: str | None
    action_expires_at: datetime | None
    created_at: datetime
    updated_at: datetime

    def to_proto(self) -> pb.Payment:
        payment = pb.Payment(
            id=self.id,
            order_id=self.order_id,
            status=STATUS_TO_PROTO[self.status],
            payment_method=self.payment_method,
            amount=self.amount,
            amount_refunded=self.amount_refunded,
            currency=self.currency,
            created_at=to_timestamp(self.created_at),
            updated_at=to_timestamp(self.updated_at),
        )
        for name in ("failure_code", "decline_code", "failure_message"):
            value = getattr(self, name)
            if value is not None:
                setattr(payment, name, value)
        if self.status == "requires_action" and self.action_expires_at is not None:
            payment.next_action.type = pb.NEXT_ACTION_TYPE_SCAN_QR
            payment.next_action.expires_at.CopyFrom(to_timestamp(self.action_expires_at))
        return payment

    def changed(self, **fields: object) -> PaymentRecord:
        return replace(self, **fields)  # type: ignore[arg-type]


@dataclass(frozen=True)
class RefundRecord:
    id: str
    idempotency_key: str
    payment_id: str
    amount: int
    currency: str
    created_at: datetime

    def to_proto(self) -> pb.Refund:
        return pb.Refund(
            id=self.id,
            payment_id=self.payment_id,
            amount=self.amount,
            currency=self.currency,
            created_at=to_timestamp(self.created_at),
        )


def _aware(value: datetime | None) -> datetime | None:
    # SQLite hands back naive datetimes; everything stored here is UTC.
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value


def _payment(row: object) -> PaymentRecord:
    data = dict(row._mapping)  # type: ignore[attr-defined]
    for key in ("action_expires_at", "created_at", "updated_at"):
        data[key] = _aware(data[key])
    return PaymentRecord(**data)


def _refund(row: object) -> RefundRecord:
    data = dict(row._mapping)  # type: ignore[attr-defined]
    data["created_at"] = _aware(data["created_at"])
    return RefundRecord(**data)


class PaymentStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def start(self) -> None:
        await self.db.create_schema(metadata)

    async def by_id(self, payment_id: str, conn: AsyncConnection | None = None) -> PaymentRecord | None:
        query = select(payments).where(payments.c.id == payment_id)
        if conn is not None:
            row = (await conn.execute(query.with_for_update())).first()
        else:
            async with self.db.read() as read_conn:
                row = (await read_conn.execute(query)).first()
        return _payment(row) if row else None

    async def by_key(self, key: str) -> PaymentRecord | None:
        async with self.db.read() as conn:
            row = (await conn.execute(select(payments).where(payments.c.idempotency_key == key))).first()
        return _payment(row) if row else None

    async def insert(self, record: PaymentRecord) -> PaymentRecord:
        """Store a new payment; if its key is taken, return the payment stored under it."""
        try:
            async with self.db.write() as conn:
                await conn.execute(insert(payments).values(**vars(record)))
            return record
        except IntegrityError:
            existing = await self.by_key(record.idempotency_key)
            if existing is None:
                raise
            return existing

    async def save(self, conn: AsyncConnection, record: PaymentRecord) -> None:
        values = {k: v for k, v in vars(record).items() if k not in ("id", "created_at")}
        await conn.execute(update(payments).where(payments.c.id == record.id).values(**values))

    async def refund_by_key(self, key: str, conn: AsyncConnection) -> RefundRecord | None:
        row = (await conn.execute(select(refunds).where(refunds.c.idempotency_key == key))).first()
        return _refund(row) if row else None

    async def insert_refund(self, conn: AsyncConnection, refund: RefundRecord) -> None:
        await conn.execute(insert(refunds).values(**vars(refund)))
