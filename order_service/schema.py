"""The order service's tables, as the code expects them after the newest migration.

Migrations (order_service/migrations/versions/) create and change the real schema; this is its
description in one place, for readers and for the test that checks the two agree. Times are
microseconds since the epoch (UTC) in both engines; an order is stored whole, as its protobuf
`Order`, beside the columns that queries need.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    UniqueConstraint,
)

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
    # The account whose API key created the order (docs/security.md#accounts-and-ownership); NULL
    # for orders made before accounts, which only internal calls see. An account's list uses the
    # ix_orders_account_* indexes.
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

# -- the events feed and webhooks (docs/webhooks.md; order_service/events.py, order_service/webhooks/) --

# The last number given to an event of each account. The transaction that writes an event
# increments it, and holds the row's lock until it commits: the account's events are numbered in
# the order they commit, with no gap, so a feed read after number n never misses one that
# commits later.
event_heads = Table(
    "event_heads",
    metadata,
    Column("account_id", String(64), primary_key=True),
    Column("seq", BigInteger, nullable=False),
    **CLUSTERED,
)

# Each account's events (an order's versions, in `order_events`) by their number.
account_events = Table(
    "account_events",
    metadata,
    Column("account_id", String(64), nullable=False),
    Column("seq", BigInteger, nullable=False),
    Column("order_id", String(40), nullable=False),
    Column("version", BigInteger, nullable=False),
    PrimaryKeyConstraint("account_id", "seq"),
    **CLUSTERED,
)

# `enabled_events`: the event types, space-separated, or `*`. `secret` signs every delivery;
# while `old_secret_until_us` is ahead, `old_secret` signs beside it (a rotation's overlap).
webhook_endpoints = Table(
    "webhook_endpoints",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("account_id", String(64), nullable=False),
    Column("url", String(2048), nullable=False),
    Column("description", String(1000), nullable=False),
    Column("enabled_events", String(1000), nullable=False),
    Column("status", String(16), nullable=False),
    Column("secret", String(100), nullable=False),
    Column("old_secret", String(100)),
    Column("old_secret_until_us", BigInteger),
    Column("created_us", BigInteger, nullable=False),
    Column("updated_us", BigInteger, nullable=False),
    Index("ix_webhook_endpoints_account", "account_id", "id"),
    **CLUSTERED,
)

# One row per event and endpoint, written in the transaction of the event. `next_attempt_us` is
# NULL while an earlier version of the same order is still pending for the endpoint (it waits its
# turn), and is pushed ahead by a lease while a replica holds the delivery (`claim`).
webhook_deliveries = Table(
    "webhook_deliveries",
    metadata,
    Column("seq", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("endpoint_id", String(40), nullable=False),
    Column("order_id", String(40), nullable=False),
    Column("version", BigInteger, nullable=False),
    Column("status", String(16), nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("next_attempt_us", BigInteger),
    Column("claim", String(40)),
    Column("last_status_code", Integer),
    Column("last_error", String(500)),
    Column("created_us", BigInteger, nullable=False),
    Column("updated_us", BigInteger, nullable=False),
    UniqueConstraint("endpoint_id", "order_id", "version", name="uq_webhook_deliveries_lane"),
    Index("ix_webhook_deliveries_endpoint", "endpoint_id", "seq"),
    Index("ix_webhook_deliveries_due", "status", "next_attempt_us"),
)
