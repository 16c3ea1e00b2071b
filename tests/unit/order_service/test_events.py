"""The events feed on SQLite (order_service/events.py): every version of an account's orders is
numbered in commit order with no gap, the feed pages through them, and its cursor is opaque
and checked. (The same under concurrent writers on PostgreSQL: tests/scale/test_events_feed.py.)"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from common.db import Database, Tx
from common.errors import InvalidArgument
from common.ids import new_id
from common.timestamps import now_us, timestamp_us
from order_service import events
from order_service.server import HISTORY
from shop.order.v1 import order_pb2 as pb
from tests import order_rows
from tests.unit.databases import migrated


@pytest.fixture
async def db(tmp_path: Path, database_server: str | None) -> AsyncIterator[Database]:
    async with migrated(HISTORY, tmp_path, database_server) as database:
        yield database


async def new_order(db: Database, account_id: str) -> pb.Order:
    order_id = new_id("ord")
    order = pb.Order(
        id=order_id, account_id=account_id, customer_id="cus_1", currency="EUR", amount=100, version=1,
        status=pb.ORDER_STATUS_PENDING_PAYMENT, created_at=timestamp_us(now_us()), updated_at=timestamp_us(now_us()),
    )  # fmt: skip
    await db.write(lambda tx: order_rows.insert(tx, order, "pm_card_visa"))
    return order


async def next_version(db: Database, order_id: str) -> None:
    async def change(tx: Tx) -> None:
        order = await order_rows.locked(tx, order_id)
        assert order is not None
        order.version += 1
        order.updated_at.CopyFrom(timestamp_us(now_us()))
        await order_rows.save(tx, order)

    await db.write(change)


async def test_each_accounts_events_are_numbered_in_commit_order(db: Database) -> None:
    feed = events.Feed(db)
    first = await new_order(db, "acct_a")
    other = await new_order(db, "acct_b")
    await next_version(db, first.id)
    second = await new_order(db, "acct_a")
    await next_version(db, other.id)
    await next_version(db, first.id)
    page = await feed.page("acct_a", 0, 100)
    assert [item.seq for item in page] == [1, 2, 3, 4]
    assert [(i.event.order.id, i.event.version) for i in page] == [
        (first.id, 1),
        (first.id, 2),
        (second.id, 1),
        (first.id, 3),
    ]
    assert [(i.event.order.id, i.event.version) for i in await feed.page("acct_b", 0, 100)] == [
        (other.id, 1),
        (other.id, 2),
    ]
    assert await feed.head("acct_a") == 4
    assert await feed.head("acct_nobody") == 0


async def test_the_feed_pages_after_a_cursor(db: Database) -> None:
    feed = events.Feed(db)
    order = await new_order(db, "acct_a")
    for _ in range(4):
        await next_version(db, order.id)
    first = await feed.page("acct_a", 0, 2)
    rest = await feed.page("acct_a", events.decode_cursor(first[-1].event.cursor), 10)
    assert [i.event.version for i in first + rest] == [1, 2, 3, 4, 5]
    assert await feed.page("acct_a", 5, 10) == []


async def test_an_event_id_is_the_same_wherever_it_is_seen(db: Database) -> None:
    order = await new_order(db, "acct_a")
    (item,) = await events.Feed(db).page("acct_a", 0, 10)
    assert item.event.id == events.event_id(order.id, 1) == f"evt_{order.id.removeprefix('ord_')}_1"
    assert item.event.type == "order.updated"


async def test_an_order_without_account_has_no_feed(db: Database) -> None:
    await new_order(db, "")
    assert await events.Feed(db).head("") == 0


def test_a_cursor_goes_round_and_is_opaque() -> None:
    for seq in (0, 1, 12345, 10**17):
        cursor = events.encode_cursor(seq)
        assert events.decode_cursor(cursor) == seq


@pytest.mark.parametrize(
    "cursor", ["", "zzz", "c1:5", events.encode_cursor(1) + "x", "YzE6LTE", "YzI6NQ", "é", "x" * 500, "YzE6MDE"]
)
def test_a_cursor_that_is_not_one_is_refused(cursor: str) -> None:
    with pytest.raises(InvalidArgument) as refused:
        events.decode_cursor(cursor)
    assert refused.value.violations == (("after", "is not a cursor this API gave"),)


@given(st.text(max_size=80))
def test_any_text_is_a_cursor_or_refused_as_not_one(text: str) -> None:
    """Nothing but InvalidArgument comes out of a bad cursor (no 500), and what passes is a number
    that a cursor of this API also stands for."""
    seq: int | None = None
    with contextlib.suppress(InvalidArgument):
        seq = events.decode_cursor(text)
    if seq is not None:
        assert seq >= 0
        assert events.decode_cursor(events.encode_cursor(seq)) == seq
