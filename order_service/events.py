"""The events feed (docs/webhooks.md): every new version of an order is an event of the order's
account, numbered in the order the account's events commit.

Why numbered at commit, under a lock: a feed that hands out "everything after the largest id
seen" skips rows that commit late — on PostgreSQL an id taken from a sequence before commit can
become visible after a larger one (the outbox trap). So the transaction that writes an event
increments its account's row in `event_heads` and keeps that row locked until it commits: the
next event of the account cannot be numbered before this one is committed and visible (the lock
is released only after the commit is visible to every new snapshot), and a transaction that rolls
back gives its number back. The numbers of an account are therefore gapless and commit-ordered,
and a reader that has seen n can never later find a smaller number appear. Two versions of one
order are written by transactions that hold the order's row lock one after the other, so they
are numbered in version order. SQLite has one writer: there, commit order is simply write order.

The cost is that one account's event-writing transactions commit one at a time from the moment
they number their event — on PostgreSQL they are serialised at commit already by the NOTIFY that
every order change carries (order_service/changes.py), so little is added.

The cursor is the number, opaque to clients (`next_cursor`, the SSE `id:`).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from common.db import Database, Sql, Tx
from common.errors import InvalidArgument
from common.timestamps import timestamp_us
from order_service.webhooks import deliveries
from shop.order.v1 import events_pb2
from shop.order.v1 import order_pb2 as pb

EVENT_TYPE = "order.updated"
EVENT_TYPES = frozenset({EVENT_TYPE})

NEXT_NUMBER = Sql(
    "INSERT INTO event_heads (account_id, seq) VALUES ($1, 1)"
    " ON CONFLICT (account_id) DO UPDATE SET seq = event_heads.seq + 1 RETURNING seq"
)
# Takes the account's head lock without numbering anything: an endpoint created or deleted under
# it sees exactly the events numbered after it (order_service/webhooks/endpoints.py).
LOCK_HEAD = Sql(
    "INSERT INTO event_heads (account_id, seq) VALUES ($1, 0)"
    " ON CONFLICT (account_id) DO UPDATE SET seq = event_heads.seq RETURNING seq"
)
INSERT = Sql("INSERT INTO account_events (account_id, seq, order_id, version) VALUES ($1, $2, $3, $4)")
HEAD = Sql("SELECT seq FROM event_heads WHERE account_id = $1")
PAGE = Sql(
    "SELECT a.seq, e.doc, e.created_us FROM account_events a"
    " JOIN order_events e ON e.order_id = a.order_id AND e.version = a.version"
    " WHERE a.account_id = $1 AND a.seq > $2 ORDER BY a.seq LIMIT $3"
)

_CURSOR_RE = re.compile(r"c1:(0|[1-9][0-9]{0,17})\Z")


def event_id(order_id: str, version: int) -> str:
    """The event's id, derived from what it is (an order's version): the same wherever it is seen
    and however often it is sent, so that receivers can drop duplicates by it."""
    return f"evt_{order_id.removeprefix('ord_')}_{version}"


def encode_cursor(seq: int) -> str:
    return base64.urlsafe_b64encode(f"c1:{seq}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str, field: str = "after") -> int:
    """The number in a cursor this API gave; INVALID_ARGUMENT (never echoing it) otherwise."""
    text = ""
    if len(cursor) <= 40:
        try:
            text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode("ascii")
        except (binascii.Error, ValueError):  # ValueError: non-ASCII input or output
            text = ""
    found = _CURSOR_RE.match(text)
    if found is None:
        raise InvalidArgument("invalid cursor", violations=[(field, "is not a cursor this API gave")])
    return int(found.group(1))


async def record(tx: Tx, order: pb.Order) -> None:
    """Part of the transaction that appends `order`'s version to the event log (store.py): number
    it in its account's feed, and queue its webhook deliveries. The caller holds the order's row
    lock (every change of an order does), which the webhook deliveries rely on too."""
    if not order.account_id:
        return  # an order from before accounts: nobody's feed
    seq = await tx.fetchval(NEXT_NUMBER, order.account_id)
    await tx.execute(INSERT, order.account_id, seq, order.id, order.version)
    queued = await deliveries.enqueue(tx, order.account_id, order.id, order.version)
    wake_after_commit(tx, order.account_id, queued)


def wake_after_commit(tx: Tx, account_id: str, queued: int) -> None:
    """This process's feed streams of the account, and (`queued` deliveries) its webhook worker,
    told once `tx` has committed an event (other replicas' find it by polling)."""
    tx.after_commit(lambda: NEWS.wake(account_id))
    if queued:
        tx.after_commit(deliveries.QUEUED.wake)


async def lock_head(tx: Tx, account_id: str) -> None:
    await tx.fetchval(LOCK_HEAD, account_id)


@dataclass(frozen=True)
class FeedEvent:
    seq: int
    event: events_pb2.Event


def to_event(seq: int, doc: bytes, created_us: int) -> events_pb2.Event:
    order = pb.Order.FromString(doc)
    return events_pb2.Event(
        id=event_id(order.id, order.version),
        type=EVENT_TYPE,
        created_at=timestamp_us(created_us),
        version=order.version,
        order=order,
        cursor=encode_cursor(seq),
    )


class Feed:
    """The reads of the feed (the writes are `record`, inside the writer's transaction)."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def page(self, account_id: str, after: int, limit: int) -> list[FeedEvent]:
        rows = await self.db.read(lambda tx: tx.fetch(PAGE, account_id, after, limit))
        return [FeedEvent(row["seq"], to_event(row["seq"], row["doc"], row["created_us"])) for row in rows]

    async def head(self, account_id: str) -> int:
        """The number of the account's newest event (0: none yet)."""
        return int(await self.db.read(lambda tx: tx.fetchval(HEAD, account_id)) or 0)


class _News:
    """Wakes this process's feed streams when one of their account's events commits here. A hint
    only, like the order watchers' (changes.py): what a stream sends is always read from the
    feed, and streams also look every POLL_S for what other replicas committed."""

    def __init__(self) -> None:
        self._waiting: dict[str, set[asyncio.Event]] = {}

    def wake(self, account_id: str) -> None:
        for event in self._waiting.get(account_id, ()):
            event.set()

    @contextmanager
    def subscribe(self, account_id: str) -> Iterator[asyncio.Event]:
        event = asyncio.Event()
        self._waiting.setdefault(account_id, set()).add(event)
        try:
            yield event
        finally:
            waiting = self._waiting.get(account_id, set())
            waiting.discard(event)
            if not waiting:
                self._waiting.pop(account_id, None)


# One per process: `record` runs inside transactions, which carry no reference to the servicer.
NEWS = _News()
