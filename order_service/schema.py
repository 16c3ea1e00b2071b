"""The order service's tables, as the code expects them after the newest migration.

Migrations (order_service/migrations/versions/) create and change the real schema; this is its
description in one place, for readers and for the test that checks the two agree. Times are
microseconds since the epoch (UTC) in both engines; an order is stored whole, as its protobuf
`Order`, beside the columns that queries need.
"""

from __future__ import annotations

from typing import Any

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
from sqlalchemy.sql.schema import SchemaItem
from sqlalchemy.types import TypeEngine

from common.migrations import CLUSTERED

metadata = MetaData()


def _table(name: str, *parts: SchemaItem) -> Table:
    """A table kept in the order of its primary key (no SQLite rowid: common.migrations.CLUSTERED)."""
    return Table(name, metadata, *parts, **CLUSTERED)


def _required(name: str, type_: TypeEngine[Any] | type[TypeEngine[Any]]) -> Column[Any]:
    return Column(name, type_, nullable=False)


orders = _table(
    "orders",
    Column("id", String(40), primary_key=True),
    _required("customer_id", String(64)),
    _required("status", String(32)),
    # What the order is charged with; in `doc` too once the payment service has answered.
    _required("payment_method", String(64)),
    Column("payment_id", String(40), unique=True),
    _required("version", BigInteger),
    _required("doc", LargeBinary),
    _required("created_us", BigInteger),
    _required("updated_us", BigInteger),
    # The account whose API key created the order (docs/security.md#accounts-and-ownership); NULL
    # for orders made before accounts, which only internal calls see. An account's list uses the
    # ix_orders_account_* indexes.
    Column("account_id", String(64)),
    Index("ix_orders_customer", "customer_id", "id"),
    Index("ix_orders_status", "status", "id"),
    Index("ix_orders_account", "account_id", "id"),
    Index("ix_orders_account_customer", "account_id", "customer_id", "id"),
    Index("ix_orders_account_status", "account_id", "status", "id"),
)

# Every version an order went through, written in the transaction of the change: what every
# watcher reads, so none misses or repeats a version.
order_events = _table(
    "order_events",
    _required("order_id", String(40)),
    _required("version", BigInteger),
    _required("doc", LargeBinary),
    _required("created_us", BigInteger),
    PrimaryKeyConstraint("order_id", "version"),
)

# REST idempotency keys: a row claims a key (`locked_until_us` is the lease of the request that
# runs it), `order_id` is how far it got, `response_*` the answer to replay.
idempotency_keys = _table(
    "idempotency_keys",
    # "<account>/<method>:<id>" (common.caller.Scope.idempotency_prefix): keys are per account.
    _required("scope", String(200)),
    _required("key", String(255)),
    _required("fingerprint", String(64)),
    Column("order_id", String(40)),
    Column("locked_until_us", BigInteger),
    # The gRPC status code of the answer (0: OK, `response` is the message; else `response` is
    # a google.rpc.Status).
    Column("response_code", Integer),
    Column("response", LargeBinary),
    _required("created_us", BigInteger),
    PrimaryKeyConstraint("scope", "key"),
    Index("ix_idempotency_keys_created", "created_us"),
)

# Orders that must be checked against their payment by `due_us` unless somebody records the
# answer first: a charge in flight, a confirm/cancel/refund whose answer may be lost, a
# confirmation window that ends. The reconciler of any replica claims the due ones.
order_checks = _table(
    "order_checks",
    _required("order_id", String(40)),
    _required("check_id", String(64)),
    _required("due_us", BigInteger),
    PrimaryKeyConstraint("order_id", "check_id"),
    Index("ix_order_checks_due", "due_us"),
)

# -- the events feed and webhooks (docs/webhooks.md; order_service/events.py, order_service/webhooks/) --

# The last number given to an event of each account. The transaction that writes an event
# increments it, and holds the row's lock until it commits: the account's events are numbered in
# the order they commit, with no gap, so a feed read after number n never misses one that
# commits later.
event_heads = _table(
    "event_heads",
    Column("account_id", String(64), primary_key=True),
    _required("seq", BigInteger),
)

# Each account's events (an order's versions, in `order_events`) by their number.
account_events = _table(
    "account_events",
    _required("account_id", String(64)),
    _required("seq", BigInteger),
    _required("order_id", String(40)),
    _required("version", BigInteger),
    PrimaryKeyConstraint("account_id", "seq"),
)

# `enabled_events`: the event types, space-separated, or `*`. `secret` signs every delivery;
# while `old_secret_until_us` is ahead, `old_secret` signs beside it (a rotation's overlap).
webhook_endpoints = _table(
    "webhook_endpoints",
    Column("id", String(40), primary_key=True),
    _required("account_id", String(64)),
    _required("url", String(2048)),
    _required("description", String(1000)),
    _required("enabled_events", String(1000)),
    _required("status", String(16)),
    _required("secret", String(100)),
    Column("old_secret", String(100)),
    Column("old_secret_until_us", BigInteger),
    _required("created_us", BigInteger),
    _required("updated_us", BigInteger),
    Index("ix_webhook_endpoints_account", "account_id", "id"),
)

# One row per event and endpoint, written in the transaction of the event. `next_attempt_us` is
# NULL while an earlier version of the same order is still pending for the endpoint (it waits its
# turn), and is pushed ahead by a lease while a replica holds the delivery (`claim`).
webhook_deliveries = Table(
    "webhook_deliveries",
    metadata,
    Column("seq", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    _required("endpoint_id", String(40)),
    _required("order_id", String(40)),
    _required("version", BigInteger),
    _required("status", String(16)),
    _required("attempts", Integer),
    Column("next_attempt_us", BigInteger),
    Column("claim", String(40)),
    Column("last_status_code", Integer),
    Column("last_error", String(500)),
    _required("created_us", BigInteger),
    _required("updated_us", BigInteger),
    UniqueConstraint("endpoint_id", "order_id", "version", name="uq_webhook_deliveries_lane"),
    Index("ix_webhook_deliveries_endpoint", "endpoint_id", "seq"),
    Index("ix_webhook_deliveries_due", "status", "next_attempt_us"),
)
