"""The two writes of every order — the pending order, and the charge's outcome — each as one
PostgreSQL statement, which is its own transaction: no BEGIN, no COMMIT, no read before the
write (docs/operations.md#statements-per-order). store.py runs them on PostgreSQL; on SQLite
(one process, group commit, no data-modifying WITH) it runs the same steps one by one.

Each statement does, in one atomic commit, what the step-by-step transaction does: the order's
row and its event, its number in the account's feed (`event_heads`, events.py), its webhook
deliveries (order_service/webhooks/deliveries.py), the checks the reconciler keeps, the REST
idempotency key's recovery point or answer, and the change's NOTIFY.

The outcome is applied only if the order is still at the version this process stored
(`WHERE version = $2`): when it lost that race the statement changes nothing and says so, and
the caller takes the locking path (SELECT … FOR UPDATE, store.py). A statement's snapshot is
taken when it starts, before it waits for the order's row lock; so whatever it reads that another
transaction may change meanwhile, it reads with `FOR UPDATE`, which re-checks the newest version
of the row once the lock is granted (the earlier delivery of the order that a webhook worker may
finish in the meantime).
"""

from __future__ import annotations

from collections.abc import Sequence

from common.db import Sql, Tx
from common.order_status import status_name
from common.timestamps import us_of
from order_service.changes import CHANNEL
from order_service.domain import CHARGE_CHECK, EXPIRY_CHECK, expiry_check
from order_service.events import EVENT_TYPE
from order_service.idempotency import Claim
from order_service.webhooks.deliveries import event_pattern, queue_deliveries
from shop.order.v1 import order_pb2 as pb

_EVENT_PATTERN = event_pattern(EVENT_TYPE)
# The deliveries of version 1 (ADD_PENDING's parameters), and of the next version, for the account
# `head` numbered its event in (RECORD's).
_QUEUE_FIRST = queue_deliveries(account="$7", order_id="$1", version="1", at="$6", pattern="$11")
_QUEUE_NEXT = queue_deliveries(
    account="(SELECT account_id FROM head)", order_id="$1", version="$5", at="$7", pattern="$13", lock=True
)

# $1 id, $2 customer, $3 status, $4 method, $5 doc, $6 time, $7 account (NULL: none),
# $8 the charge check's due time, $9 $10 the idempotency key (NULLs: none), $11 the event type
# pattern of endpoints, $12 the charge check's name.
ADD_PENDING = Sql(
    "WITH new_order AS ("
    "  INSERT INTO orders (id, customer_id, status, payment_method, payment_id, version, doc, created_us,"
    "   updated_us, account_id) VALUES ($1, $2, $3, $4, NULL, 1, $5, $6, $6, $7)),"
    " event AS (INSERT INTO order_events (order_id, version, doc, created_us) VALUES ($1, 1, $5, $6)),"
    " charge_check AS (INSERT INTO order_checks (order_id, check_id, due_us) VALUES ($1, $12, $8)),"
    " recovery_point AS (UPDATE idempotency_keys SET order_id = $1 WHERE scope = $9 AND key = $10),"
    " head AS (INSERT INTO event_heads (account_id, seq) SELECT CAST($7 AS TEXT), 1 WHERE $7 IS NOT NULL"
    "  ON CONFLICT (account_id) DO UPDATE SET seq = event_heads.seq + 1 RETURNING seq),"
    " feed AS (INSERT INTO account_events (account_id, seq, order_id, version) SELECT $7, seq, $1, 1 FROM head),"
    f" queued AS ({_QUEUE_FIRST} RETURNING 1)"
    " SELECT count(*) FROM queued"
)

# $1 id, $2 the version this process stored, $3 status, $4 payment id, $5 new version, $6 doc,
# $7 time, $8 the checks it settles, $9 the expiry check's due time (NULL: none),
# $10 the idempotency answer, $11 $12 its key (NULLs: none), $13 the event type pattern,
# $14 the NOTIFY channel, $15 its payload, $16 the expiry check's name.
RECORD = Sql(
    "WITH changed AS ("
    "  UPDATE orders SET status = $3, payment_id = $4, version = $5, doc = $6, updated_us = $7"
    "  WHERE id = $1 AND version = $2 RETURNING account_id),"
    " event AS (INSERT INTO order_events (order_id, version, doc, created_us) SELECT $1, $5, $6, $7 FROM changed),"
    " settled AS (DELETE FROM order_checks WHERE order_id = $1 AND check_id = ANY(CAST($8 AS TEXT[]))"
    "  AND EXISTS (SELECT 1 FROM changed)),"
    " expiry AS (INSERT INTO order_checks (order_id, check_id, due_us) SELECT $1, $16, CAST($9 AS BIGINT) FROM changed"
    "  WHERE $9 IS NOT NULL ON CONFLICT (order_id, check_id) DO UPDATE SET due_us = excluded.due_us),"
    " answer AS (UPDATE idempotency_keys SET response_code = 0, response = $10, locked_until_us = NULL"
    "  WHERE scope = $11 AND key = $12 AND EXISTS (SELECT 1 FROM changed)),"
    " head AS (INSERT INTO event_heads (account_id, seq) SELECT account_id, 1 FROM changed"
    "  WHERE account_id IS NOT NULL"
    "  ON CONFLICT (account_id) DO UPDATE SET seq = event_heads.seq + 1 RETURNING account_id, seq),"
    " feed AS (INSERT INTO account_events (account_id, seq, order_id, version) SELECT account_id, seq, $1, $5"
    "  FROM head),"
    f" queued AS ({_QUEUE_NEXT} RETURNING 1)"
    " SELECT n AS changed, (SELECT count(*) FROM queued) AS queued,"
    "  CASE WHEN n > 0 THEN pg_notify($14, $15) END AS notified"
    " FROM (SELECT count(*) AS n FROM changed) AS c"
)


async def add_pending(tx: Tx, order: pb.Order, payment_method: str, charge_due_us: int, key: Claim | None) -> int:
    """Store a new order; returns how many webhook deliveries it queued."""
    queued = await tx.fetchval(
        ADD_PENDING,
        order.id,
        order.customer_id,
        status_name(order.status),
        payment_method,
        order.SerializeToString(),
        us_of(order.created_at),
        order.account_id or None,
        charge_due_us,
        key and key.scope,
        key and key.key,
        _EVENT_PATTERN,
        CHARGE_CHECK,
    )
    return int(queued)


async def record(
    tx: Tx, order: pb.Order, stored: pb.Order, settles: Sequence[str], answer_key: Claim | None
) -> int | None:
    """Store `order`, the next version of `stored`; returns how many webhook deliveries it queued,
    or None when the order was no longer at `stored`'s version (nothing was written). As the
    step-by-step transaction does, the expiry check follows the status."""
    expiry, settle_expiry = expiry_check(stored.status, order)
    if settle_expiry:
        settles = [*settles, EXPIRY_CHECK]
    row = await tx.fetchrow(
        RECORD,
        order.id,
        stored.version,
        status_name(order.status),
        order.payment.id or None,
        order.version,
        order.SerializeToString(),
        us_of(order.updated_at),
        list(settles),
        expiry,
        answer_key and answer_key.answer_of(order, order.payment).SerializeToString(),
        answer_key and answer_key.scope,
        answer_key and answer_key.key,
        _EVENT_PATTERN,
        CHANNEL,
        f"{order.id}:{order.version}",
        EXPIRY_CHECK,
    )
    assert row is not None
    return int(row["queued"]) if row["changed"] else None
