"""The payment service's tables, as the code expects them after the newest migration (see
order_service/schema.py for how the two are kept in step). Times are microseconds since the
epoch (UTC)."""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, ForeignKey, MetaData, String, Table

from common.migrations import CLUSTERED

metadata = MetaData()

payments = Table(
    "payments",
    metadata,
    Column("id", String(40), primary_key=True),
    # A repeat of a Charge with this key gets this payment back: nothing is charged twice.
    Column("idempotency_key", String(300), nullable=False, unique=True),
    # One payment per order: a second Charge for it under another key is refused.
    Column("order_id", String(64), nullable=False, unique=True),
    Column("status", String(32), nullable=False),
    Column("payment_method", String(64), nullable=False),
    Column("amount", BigInteger, nullable=False),
    Column("amount_refunded", BigInteger, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("failure_code", String(64)),
    Column("decline_code", String(64)),
    Column("failure_message", String(255)),
    Column("action_expires_us", BigInteger),
    # Grows by one with every change, so that a caller can tell the newer of two answers.
    Column("version", BigInteger, nullable=False),
    Column("created_us", BigInteger, nullable=False),
    Column("updated_us", BigInteger, nullable=False),
    # The account the payment is for, from the order service's x-account-id (NULL: from before
    # accounts), and the order's client secret, which lets the phone page read it
    # (docs/security.md#client-secrets).
    Column("account_id", String(64)),
    Column("client_secret", String(200)),
    **CLUSTERED,
)

refunds = Table(
    "refunds",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("idempotency_key", String(300), nullable=False, unique=True),
    Column("payment_id", String(40), ForeignKey("payments.id"), nullable=False, index=True),
    Column("amount", BigInteger, nullable=False),
    # What was asked for (NULL: "the rest"), so that a key reused for another refund is refused.
    Column("requested_amount", BigInteger),
    Column("currency", String(3), nullable=False),
    Column("created_us", BigInteger, nullable=False),
    **CLUSTERED,
)
