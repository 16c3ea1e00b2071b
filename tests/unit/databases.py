"""A migrated database for the unit tests of one service's store and flows (the integration
suites start the real processes instead): a SQLite file in a temporary folder, or — the
PostgreSQL param of the `database_server` fixture (tests/unit/conftest.py) — a new database on
the session's PostgreSQL server, so that the flows are held to the same tests on both engines
(their statements differ: order_service/single_statements.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import asyncpg

from common.db import Database, open_database
from common.ids import new_id
from common.migrations import History, upgrade


@asynccontextmanager
async def migrated(
    history: History, folder: Path, server: str | None = None, *, pool_size: int = 10
) -> AsyncIterator[Database]:
    if server is None:
        url = f"sqlite:///{folder}/{history.service}.db"
    else:
        name = new_id(history.service).lower()
        conn = await asyncpg.connect(server)
        try:
            await conn.execute(f'CREATE DATABASE "{name}"')
        finally:
            await conn.close()
        url = server.rsplit("/", 1)[0] + f"/{name}"
    await upgrade(history, url)
    db = open_database(url, pool_size=pool_size)
    await db.start()
    try:
        yield db
    finally:
        await db.close()
