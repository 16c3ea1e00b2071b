"""Webhook deliveries in the database: one row per event and endpoint (`webhook_deliveries`).

- Queued in the transaction that writes the event (events.record), for every enabled endpoint
  of the account whose `enabled_events` match — so an event and its deliveries commit together,
  and no cursor over the log is needed to find them (nothing to skip, nothing to lose).
- One at a time per order and endpoint: a delivery queued while an earlier version of the same
  order is still pending for that endpoint waits (`next_attempt_us` NULL) until that one
  succeeds or finally fails; finishing it releases the next. Both sides hold the order's row
  lock (the event's writer always does; `finish` takes it), so a release cannot miss a delivery
  queued at the same moment.
- Claimed by any replica's worker (`FOR UPDATE SKIP LOCKED`): a claim pushes `next_attempt_us`
  ahead by a lease and marks the row with the claim's token. The outcome is recorded only under
  that token; a replica that died mid-attempt leaves the lease to run out, and another replica
  attempts again (at least once).
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cache

from common.db import Database, Row, Sql, Tx
from common.ids import new_id
from common.timestamps import now_us

PENDING, SUCCEEDED, FAILED = "pending", "succeeded", "failed"
# How far a retry's wait may stray from the schedule, either way: receivers that came back at
# once are not all called at the same instant.
JITTER = 0.1


def queue_deliveries(account: str, order_id: str, version: str, at: str, pattern: str, *, lock: bool = False) -> str:
    """The INSERT that queues an event's deliveries: one per enabled endpoint of `account` whose
    `enabled_events` match `pattern` (event_pattern), waiting (`next_attempt_us` NULL) when an
    earlier delivery of the order is still pending for that endpoint. The arguments are SQL
    expressions (`$n`), so that the single statements (order_service/single_statements.py) embed
    the same INSERT; `lock`: read that earlier delivery FOR UPDATE, as a statement whose snapshot
    is older than the order's row lock must."""
    locking = " FOR UPDATE" if lock else ""
    return (
        "INSERT INTO webhook_deliveries"
        " (endpoint_id, order_id, version, status, attempts, next_attempt_us, created_us, updated_us)"
        f" SELECT w.id, CAST({order_id} AS TEXT), CAST({version} AS BIGINT), 'pending', 0,"
        "  CASE WHEN EXISTS (SELECT 1 FROM webhook_deliveries p"
        f"   WHERE p.endpoint_id = w.id AND p.order_id = {order_id} AND p.status = 'pending'{locking})"
        f"  THEN NULL ELSE CAST({at} AS BIGINT) END, CAST({at} AS BIGINT), CAST({at} AS BIGINT)"
        f" FROM webhook_endpoints w WHERE w.account_id = {account} AND w.status = 'enabled'"
        f" AND (w.enabled_events = '*' OR (' ' || w.enabled_events || ' ') LIKE {pattern})"
    )


ENQUEUE = Sql(queue_deliveries(account="$1", order_id="$2", version="$3", at="$4", pattern="$5"))

# Due deliveries, at most `$6` per endpoint and none of the endpoints listed in `$5` (",a,b,":
# those this replica is already busy with), oldest due first. The due conditions are repeated
# at the locking level so that a row another replica claimed meanwhile is re-checked and skipped.
CLAIM = Sql(
    "UPDATE webhook_deliveries SET next_attempt_us = $2, claim = $3 WHERE seq IN ("
    " SELECT seq FROM webhook_deliveries WHERE status = 'pending' AND next_attempt_us <= $1 AND seq IN ("
    "  SELECT seq FROM (SELECT seq, row_number() OVER (PARTITION BY endpoint_id ORDER BY next_attempt_us, seq)"
    "   AS place FROM webhook_deliveries WHERE status = 'pending' AND next_attempt_us <= $1"
    "   AND $5 NOT LIKE ('%,' || endpoint_id || ',%')) AS due WHERE place <= $6)"
    " ORDER BY next_attempt_us LIMIT $4 FOR UPDATE SKIP LOCKED)"
    " RETURNING seq, endpoint_id, order_id, version, attempts"
)
# What an attempt needs: the event and the endpoint (as it is now: deleted meanwhile, it is not sent).
ATTEMPT = Sql(
    "SELECT e.doc, e.created_us, w.url, w.status, w.secret, w.old_secret, w.old_secret_until_us"
    " FROM order_events e, webhook_endpoints w WHERE e.order_id = $1 AND e.version = $2 AND w.id = $3"
)
LOCK_ORDER = Sql("SELECT id FROM orders WHERE id = $1 FOR UPDATE")
FINISH = Sql(
    "UPDATE webhook_deliveries SET status = $3, attempts = attempts + 1, next_attempt_us = $4, claim = NULL,"
    " last_status_code = $5, last_error = $6, updated_us = $7"
    " WHERE seq = $1 AND claim = $2 AND status = 'pending'"
)
RELEASE_NEXT = Sql(
    "UPDATE webhook_deliveries SET next_attempt_us = $3 WHERE seq = ("
    " SELECT seq FROM webhook_deliveries WHERE endpoint_id = $1 AND order_id = $2 AND status = 'pending'"
    " AND next_attempt_us IS NULL ORDER BY version LIMIT 1)"
)
FAIL_PENDING = Sql(
    "UPDATE webhook_deliveries SET status = 'failed', next_attempt_us = NULL, claim = NULL,"
    " last_error = 'the endpoint was deleted', updated_us = $2 WHERE endpoint_id = $1 AND status = 'pending'"
)
_LOG_COLUMNS = (
    "seq, order_id, version, status, attempts, next_attempt_us, last_status_code, last_error, created_us, updated_us"
)


@cache
def _log_query(by_order: bool, before: bool) -> Sql:
    """An endpoint's deliveries, newest first, optionally of one order and before a position."""
    conditions = ["endpoint_id = $2"]
    if by_order:
        conditions.append(f"order_id = ${len(conditions) + 2}")
    if before:
        conditions.append(f"seq < ${len(conditions) + 2}")
    where = " AND ".join(conditions)
    return Sql(f"SELECT {_LOG_COLUMNS} FROM webhook_deliveries WHERE {where} ORDER BY seq DESC LIMIT $1")


class _Queued:
    """Wakes this process's worker when deliveries commit here (other replicas' workers find
    them by polling). One per process, like events.NEWS: transactions carry no reference to it."""

    def __init__(self) -> None:
        self._waiting: set[asyncio.Event] = set()

    def wake(self) -> None:
        for event in self._waiting:
            event.set()

    @contextmanager
    def subscribe(self) -> Iterator[asyncio.Event]:
        event = asyncio.Event()
        self._waiting.add(event)
        try:
            yield event
        finally:
            self._waiting.discard(event)


QUEUED = _Queued()


def event_pattern(event_type: str) -> str:
    """What `LIKE` matches an endpoint's `enabled_events` (space-separated) that take `event_type`."""
    return f"% {event_type} %"


async def enqueue(tx: Tx, account_id: str, order_id: str, version: int, event_type: str = "order.updated") -> int:
    """Part of the event's transaction (see the module docstring): a delivery per endpoint. Returns
    how many were queued (the caller wakes the worker at commit: events.wake_after_commit)."""
    return await tx.execute(ENQUEUE, account_id, order_id, version, now_us(), event_pattern(event_type))


async def fail_pending(tx: Tx, endpoint_id: str) -> None:
    await tx.execute(FAIL_PENDING, endpoint_id, now_us())


@dataclass(frozen=True)
class Claimed:
    seq: int
    endpoint_id: str
    order_id: str
    version: int
    attempts: int  # before this one
    claim: str


@dataclass(frozen=True)
class Outcome:
    """What one attempt came to: delivered (a 2xx), or not, with the answer's status if any."""

    delivered: bool
    status_code: int | None = None
    error: str | None = None


async def claim(db: Database, limit: int, per_endpoint: int, busy: Sequence[str], lease_us: int) -> list[Claimed]:
    token = new_id("clm")
    now = now_us()
    excluded = "," + ",".join(busy) + ","
    rows = await db.write(lambda tx: tx.fetch(CLAIM, now, now + lease_us, token, limit, excluded, per_endpoint))
    found = [Claimed(r["seq"], r["endpoint_id"], r["order_id"], r["version"], r["attempts"], token) for r in rows]
    return sorted(found, key=lambda c: c.seq)


async def attempt_inputs(db: Database, claimed: Claimed) -> Row | None:
    return await db.read(lambda tx: tx.fetchrow(ATTEMPT, claimed.order_id, claimed.version, claimed.endpoint_id))


def next_state(attempts: int, outcome: Outcome, schedule: Sequence[float], now: int) -> tuple[str, int | None]:
    """The delivery's status and next attempt after its attempt number `attempts` (1, 2, …)."""
    if outcome.delivered:
        return SUCCEEDED, None
    if attempts > len(schedule):
        return FAILED, None
    wait_s = schedule[attempts - 1] * random.uniform(1 - JITTER, 1 + JITTER)
    return PENDING, now + round(wait_s * 1_000_000)


async def finish(db: Database, claimed: Claimed, outcome: Outcome, schedule: Sequence[float]) -> str | None:
    """Record the attempt (only if the claim still holds); returns the delivery's new status, or
    None if the claim had run out and another replica had taken the delivery."""
    now = now_us()
    status, next_attempt = next_state(claimed.attempts + 1, outcome, schedule, now)
    error = None if outcome.delivered else (outcome.error or "")[:500]

    async def record(tx: Tx) -> str | None:
        await tx.fetchval(LOCK_ORDER, claimed.order_id)
        changed = await tx.execute(
            FINISH, claimed.seq, claimed.claim, status, next_attempt, outcome.status_code, error, now
        )
        if not changed:
            return None
        # Final: the next version of the order waiting for this endpoint may go.
        if status != PENDING and await tx.execute(RELEASE_NEXT, claimed.endpoint_id, claimed.order_id, now):
            tx.after_commit(QUEUED.wake)
        return status

    return await db.write(record)


async def log_page(
    db: Database, endpoint_id: str, limit: int, before: int | None, order_id: str | None
) -> Sequence[Row]:
    query = _log_query(order_id is not None, before is not None)
    args = [a for a in (order_id, before) if a is not None]
    return await db.read(lambda tx: tx.fetch(query, limit, endpoint_id, *args))
