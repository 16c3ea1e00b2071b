"""No session state outlives one use of a pooled PostgreSQL connection.

The pool gives connections back without asyncpg's reset query (common/db/postgres.py,
`_keep_session`): asyncpg still rolls back a transaction left open, and nothing else is needed
because no statement of the services opens a cursor, SETs a setting, LISTENs, takes an advisory
lock or makes a temporary table. Here every flow runs on a pool of one connection, and that
connection is then inspected; and the inspection is shown to see each kind of state it looks for."""

from __future__ import annotations

import asyncio
import importlib
import pkgutil
import re
from pathlib import Path
from typing import Any

import pytest

import common
import order_service
import payment_service
from common.db import Database, Sql, Tx
from common.db.postgres import PostgresDatabase
from order_service.changes import LocalChanges
from order_service.idempotency import Idempotency
from order_service.orders import Orders
from order_service.reconciler import Reconciler
from order_service.server import HISTORY
from order_service.store import OrderStore
from shop.order.v1 import order_pb2 as pb
from tests.unit.databases import migrated
from tests.unit.order_service.conftest import FakePayments, Setup, create_request

pytestmark = pytest.mark.postgres

SESSION_STATE = (
    "SELECT (SELECT count(*) FROM pg_listening_channels()) AS listening,"
    " (SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid()) AS advisory_locks,"
    " (SELECT count(*) FROM pg_settings WHERE source = 'session') AS settings,"
    " (SELECT count(*) FROM pg_class WHERE relnamespace = pg_my_temp_schema()) AS temporary_tables,"
    " (SELECT count(*) FROM pg_cursors WHERE name <> '') AS cursors"  # '': this query's own portal
)
CLEAN = {
    "listening": 0,
    "advisory_locks": 0,
    "settings": 0,
    "temporary_tables": 0,
    "cursors": 0,
    "in_transaction": False,
}


async def session_state(db: Database) -> dict[str, Any]:
    """What the pool's connection carries, as the next user of it would get it."""
    assert isinstance(db, PostgresDatabase)
    async with db._acquire() as conn:
        in_transaction = conn.is_in_transaction()
        row = await conn.fetchrow(SESSION_STATE)
    return {**row, "in_transaction": in_transaction}


@pytest.fixture
async def one_connection(tmp_path: Path, postgres_server: str) -> Any:
    async with migrated(HISTORY, tmp_path, postgres_server, pool_size=1) as db:
        yield db


async def test_the_flows_leave_nothing_on_the_connection(one_connection: Database) -> None:
    db = one_connection
    orders = Orders(OrderStore(db, LocalChanges()), FakePayments())  # type: ignore[arg-type]
    setup = Setup(orders, orders.payments, Reconciler(orders, interval_s=1, deadline_s=5), Idempotency(db))  # type: ignore[arg-type]
    paid, _ = await setup.create(create_request(), "key-1")
    await setup.create(create_request(), "key-1")  # replayed
    waiting, _ = await setup.create(create_request("pm_wallet_qr"))
    await setup.confirm(pb.ConfirmPaymentRequest(payment_id=waiting.payment.id))
    await setup.refund(pb.RefundOrderRequest(order_id=paid.id, amount=10), "refund-1")
    other, _ = await setup.create(create_request("pm_wallet_qr"))
    await setup.cancel(pb.CancelOrderRequest(order_id=other.id))
    await setup.create_during_an_outage("key-2")
    await setup.reconcile_later()
    await orders.store.page(None, "", "", 10, None)
    assert await session_state(db) == CLEAN


async def test_a_transaction_cut_short_is_rolled_back(one_connection: Database) -> None:
    started = asyncio.Event()

    async def stalls(tx: Tx) -> None:
        await tx.execute(Sql("CREATE TABLE IF NOT EXISTS scratch (n INT)"))
        started.set()
        await tx.fetchval(Sql("SELECT pg_sleep(30)"))

    task: asyncio.Future[None] = asyncio.ensure_future(one_connection.write(stalls))
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await session_state(one_connection) == CLEAN
    assert await one_connection.read(lambda tx: tx.fetchval(Sql("SELECT to_regclass('scratch') IS NULL")))


@pytest.mark.parametrize(
    ("statement", "seen_as"),
    [
        ("LISTEN somewhere", "listening"),
        ("SELECT pg_advisory_lock(42)", "advisory_locks"),
        ("SET work_mem = '8MB'", "settings"),
        ("CREATE TEMPORARY TABLE scratch (n INT)", "temporary_tables"),
    ],
)
async def test_the_inspection_sees_what_it_looks_for(one_connection: Database, statement: str, seen_as: str) -> None:
    """What these tests would catch if a statement of the services ever did it."""
    await one_connection.write(lambda tx: tx.execute(Sql(statement)), single_statement=True)
    state = await session_state(one_connection)
    assert state[seen_as] == 1
    assert state | {seen_as: CLEAN[seen_as]} == CLEAN


SESSION_STATEMENT = re.compile(
    r"^\s*(SET|RESET|LISTEN|DECLARE|PREPARE)\b|pg_advisory|set_config|CREATE\s+(TEMP|TEMPORARY)\b", re.IGNORECASE
)


def test_no_statement_of_the_services_makes_session_state() -> None:
    """The statements the flows above do not reach (the webhook worker's, the feed's…) too."""
    statements = []
    for package in (common, order_service, payment_service):
        for found in pkgutil.walk_packages(package.__path__, f"{package.__name__}."):
            if ".migrations" in found.name or found.name.endswith("__main__"):
                continue
            module = importlib.import_module(found.name)
            statements += [value for value in vars(module).values() if isinstance(value, Sql)]
    assert len(statements) >= 40, "the statements were not found"
    assert [sql for sql in statements if SESSION_STATEMENT.search(sql.postgres)] == []
