"""The order service's tables, as the code expects them after the newest migration.

Migrations (order_service/migrations/versions/) create and change the real schema; this is its
description in one place, for readers and for the test that checks the two agree. Times are
microseconds since the epoch (UTC) in both engines; an order is stored whole, as its protobuf
`Order`, beside the columns that queries need.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Index, Integer, LargeBinary, MetaData, PrimaryKeyConstraint, String, Table

from common.migrations import CLUSTERED

metadata = MetaData()

orders = Table(
    "orders",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("customer_id", String(64), nullable=False),
    Column("status", String(32), nullable=False),
    # What the order is charged with; in `doc` too once the payment service has answered.
    Column("payment_method", String(64), nullable=False),
    Column("payment_id", String(40), unique=True),
    Column("version", BigInteger, nullable=False),
    Column("doc", LargeBinary, nullable=False),
    Column("created_us", BigInteger, nullable=False),
    Column("updated_us", BigInteger, nullable=False),
    # The account whose API key created the order (CONTRACT §11); NULL for orders made before
    # accounts, which only internal calls see. An account's list uses the ix_orders_account_* indexes.
    Column("account_id", String(64)),
    Index("ix_orders_customer", "customer_id", "id"),
    Index("ix_orders_status", "status", "id"),
    Index("ix_orders_account", "account_id", "id"),
    Index("ix_orders_account_customer", "account_id", "customer_id", "id"),
    Index("ix_orders_account_status", "account_id", "status", "id"),
    **CLUSTERED,
)

# Every version an order went through, written in the transaction of the change: what every
# watcher reads, so none misses or repeats a version.
order_events = Table(
    "order_events",
    metadata,
    Column("order_id", String(40), nullable=False),
    Column("version", BigInteger, nullable=False),
    Column("doc", LargeBinary, nullable=False),
    Column("created_us", BigInteger, nullable=False),
    PrimaryKeyConstraint("order_id", "version"),
    **CLUSTERED,
)

# REST idempotency keys: a row claims a key (`locked_until_us` is the lease of the request that
# runs it), `order_id` is how far it got, `response_*` the answer to replay.
idempotency_keys = Table(
    "idempotency_keys",
    metadata,
    # "<account>/<method>:<id>" (common.caller.Scope.idempotency_prefix): keys are per account.
    Column("scope", String(200), nullable=False),
    Column("key", String(255), nullable=False),
    Column("fingerprint", String(64), nullable=False),
    Column("order_id", String(40)),
    Column("locked_until_us", BigInteger),
    # The gRPC status code of the answer (0: OK, `response` is the message; else `response` is
    # a google.rpc.Status).
    Column("response_code", Integer),
    Column("response", LargeBinary),
    Column("created_us", BigInteger, nullable=False),
    PrimaryKeyConstraint("scope", "key"),
    Index("ix_idempotency_keys_created", "created_us"),
    **CLUSTERED,
)

# Orders that must be checked against their payment by `due_us` unless somebody records the
# answer first: a charge in flight, a confirm/cancel/refund whose answer may be lost, a
# confirmation window that ends. The reconciler of any replica claims the due ones.
order_checks = Table(
    "order_checks",
    metadata,
    Column("order_id", String(40), nullable=False),
    Column("check_id", String(64), nullable=False),
    Column("due_us", BigInteger, nullable=False),
    PrimaryKeyConstraint("order_id", "check_id"),
    Index("ix_order_checks_due", "due_us"),
    **CLUSTERED,
)
