"""The one-statement writes of PostgreSQL (order_service/single_statements.py), where one
snapshot, taken before the statement waits for a lock, could read something stale."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest

from common.db import Database
from common.timestamps import now_us
from order_service.changes import LocalChanges
from order_service.server import HISTORY
from order_service.store import OrderStore
from order_service.webhooks import deliveries
from shop.order.v1 import order_pb2 as pb
from shop.payment.v1 import payment_pb2
from tests.unit.databases import migrated
from tests.unit.order_service.test_events import new_order
from tests.unit.order_service.webhooks.test_deliveries import ACCOUNT, claim, endpoint

pytestmark = pytest.mark.postgres


@pytest.fixture
async def db(tmp_path: Path, postgres_server: str) -> AsyncIterator[Database]:
    async with migrated(HISTORY, tmp_path, postgres_server) as database:
        yield database


async def waiting_for_a_lock(conn: asyncpg.Connection) -> bool:
    return bool(await conn.fetchval("SELECT count(*) FROM pg_locks WHERE NOT granted"))


async def test_a_version_written_while_the_last_delivery_finishes_is_not_left_waiting(db: Database) -> None:
    """A webhook worker finishes version 1's delivery (holding the order's lock) while the
    statement that writes version 2 waits for that lock. Read from the statement's snapshot,
    version 1 would still look pending, and version 2 would wait for a release that has already
    happened — for ever. Read FOR UPDATE, it is seen as finished, and version 2 is due at once."""
    await endpoint(db)
    order = await new_order(db, ACCOUNT)
    (first,) = await claim(db)
    paid = payment_pb2.Payment(id="pay_1", order_id=order.id, status=payment_pb2.PAYMENT_STATUS_SUCCEEDED, version=1)
    url = db.url
    worker = await asyncpg.connect(url)
    try:
        # The worker's finish (deliveries.finish), held open before its commit.
        finishing = worker.transaction()
        await finishing.start()
        await worker.fetchval(deliveries.LOCK_ORDER.postgres, order.id)
        finished = await worker.execute(
            deliveries.FINISH.postgres, first.seq, first.claim, deliveries.SUCCEEDED, None, 204, None, now_us()
        )
        assert finished == "UPDATE 1"
        assert await worker.execute(deliveries.RELEASE_NEXT.postgres, first.endpoint_id, order.id, now_us()) == (
            "UPDATE 0"
        )  # nothing waits yet
        store = OrderStore(db, LocalChanges())
        recording = asyncio.create_task(store.record(order.id, paid, stored=order))
        observer = await asyncpg.connect(url)
        try:
            # Another process's state (the server's lock table): nothing to await but a look.
            async with asyncio.timeout(30):  # only a hang: the lock is held until the commit below
                while not await waiting_for_a_lock(observer):  # noqa: ASYNC110
                    await asyncio.sleep(0.01)
        finally:
            await observer.close()
        await finishing.commit()
        recorded = await recording
    finally:
        await worker.close()
    assert (recorded.version, recorded.status) == (2, pb.ORDER_STATUS_PAID)
    (second,) = await claim(db)
    assert (second.order_id, second.version) == (order.id, 2)
