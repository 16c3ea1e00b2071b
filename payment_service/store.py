"""Payments and refunds in the payment service's own database (tables: payment_service/schema.py)."""

from __future__ import annotations

from dataclasses import dataclass, fields, replace

from common.db import Row, Sql, Tx
from common.timestamps import now_us, timestamp_us
from shop.payment.v1 import payment_pb2 as pb

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


@dataclass(frozen=True, slots=True)
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
    action_expires_us: int | None
    version: int
    created_us: int
    updated_us: int
    # docs/security.md#accounts-and-ownership: the account the payment is for, and its order's
    # client secret (None: a payment from before accounts, or an internal charge).
    account_id: str | None = None
    client_secret: str | None = None

    def to_proto(self) -> pb.Payment:
        payment = pb.Payment(
            id=self.id,
            order_id=self.order_id,
            status=STATUS_TO_PROTO[self.status],
            payment_method=self.payment_method,
            amount=self.amount,
            amount_refunded=self.amount_refunded,
            currency=self.currency,
            created_at=timestamp_us(self.created_us),
            updated_at=timestamp_us(self.updated_us),
            version=self.version,
            account_id=self.account_id or "",
            client_secret=self.client_secret or "",
        )
        if self.failure_code is not None:
            payment.failure_code = self.failure_code
        if self.decline_code is not None:
            payment.decline_code = self.decline_code
        if self.failure_message is not None:
            payment.failure_message = self.failure_message
        if self.status == "requires_action" and self.action_expires_us is not None:
            payment.next_action.type = pb.NEXT_ACTION_TYPE_SCAN_QR
            payment.next_action.expires_at.CopyFrom(timestamp_us(self.action_expires_us))
        return payment

    def changed(self, **values: object) -> PaymentRecord:
        """The next version of the payment, with `values` changed."""
        return replace(self, **values, version=self.version + 1, updated_us=now_us())  # type: ignore[arg-type]


@dataclass(frozen=True, slots=True)
class RefundRecord:
    id: str
    idempotency_key: str
    payment_id: str
    amount: int
    requested_amount: int | None
    currency: str
    created_us: int

    def to_proto(self) -> pb.Refund:
        return pb.Refund(
            id=self.id,
            payment_id=self.payment_id,
            amount=self.amount,
            currency=self.currency,
            created_at=timestamp_us(self.created_us),
        )


_PAYMENT_COLUMNS = [f.name for f in fields(PaymentRecord)]
_REFUND_COLUMNS = [f.name for f in fields(RefundRecord)]


def _insert(table: str, columns: list[str], suffix: str = "") -> Sql:
    placeholders = ", ".join(f"${i}" for i in range(1, len(columns) + 1))
    return Sql(f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({placeholders}) {suffix}")


_SELECT = f"SELECT {', '.join(_PAYMENT_COLUMNS)} FROM payments"
BY_ID = Sql(f"{_SELECT} WHERE id = $1")
BY_ID_FOR_UPDATE = Sql(f"{_SELECT} WHERE id = $1 FOR UPDATE")
# The payment of this key, or of this order under another key (at most one of each).
BY_KEY_OR_ORDER = Sql(f"{_SELECT} WHERE idempotency_key = $1 OR order_id = $2")
# Either unique column may collide: a repeat of the key, or another key for the same order.
INSERT_PAYMENT = _insert("payments", _PAYMENT_COLUMNS, "ON CONFLICT DO NOTHING RETURNING id")
_FIXED = ("id", "idempotency_key", "order_id", "created_us", "account_id", "client_secret")
_CHANGING = [c for c in _PAYMENT_COLUMNS if c not in _FIXED]
UPDATE_PAYMENT = Sql(
    f"UPDATE payments SET {', '.join(f'{c} = ${i}' for i, c in enumerate(_CHANGING, start=2))} WHERE id = $1"
)
REFUND_BY_KEY = Sql(f"SELECT {', '.join(_REFUND_COLUMNS)} FROM refunds WHERE idempotency_key = $1")
INSERT_REFUND = _insert("refunds", _REFUND_COLUMNS)


def _payment(row: Row | None) -> PaymentRecord | None:
    return None if row is None else PaymentRecord(*(row[c] for c in _PAYMENT_COLUMNS))


def _refund(row: Row | None) -> RefundRecord | None:
    return None if row is None else RefundRecord(*(row[c] for c in _REFUND_COLUMNS))


async def by_id(tx: Tx, payment_id: str, *, lock: bool = False) -> PaymentRecord | None:
    return _payment(await tx.fetchrow(BY_ID_FOR_UPDATE if lock else BY_ID, payment_id))


async def by_key_or_order(tx: Tx, key: str, order_id: str) -> PaymentRecord | None:
    """The payment stored under `key`; else the one of `order_id` (made with another key)."""
    found = [_payment(row) for row in await tx.fetch(BY_KEY_OR_ORDER, key, order_id)]
    return next((p for p in found if p and p.idempotency_key == key), found[0] if found else None)


async def insert(tx: Tx, record: PaymentRecord) -> bool:
    """Store a new payment; False (and nothing stored) when its key or its order has one. (One
    statement: RETURNING says whether the row went in, on either engine.)"""
    return await tx.fetchval(INSERT_PAYMENT, *(getattr(record, c) for c in _PAYMENT_COLUMNS)) is not None


async def save(tx: Tx, record: PaymentRecord) -> None:
    await tx.execute(UPDATE_PAYMENT, record.id, *(getattr(record, c) for c in _CHANGING))


async def refund_by_key(tx: Tx, key: str) -> RefundRecord | None:
    return _refund(await tx.fetchrow(REFUND_BY_KEY, key))


async def insert_refund(tx: Tx, refund: RefundRecord) -> None:
    await tx.execute(INSERT_REFUND, *(getattr(refund, c) for c in _REFUND_COLUMNS))
