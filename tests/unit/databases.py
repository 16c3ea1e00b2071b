"""A migrated SQLite database in a temporary folder, for the unit tests of one service's store
and flows (the integration suites start the real processes instead)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from common.db import Database, open_database
from common.migrations import History, upgrade


@asynccontextmanager
async def migrated(history: History, folder: Path) -> AsyncIterator[Database]:
    url = f"sqlite:///{folder}/{history.service}.db"
    await upgrade(history, url)
    db = open_database(url)
    await db.start()
    try:
        yield db
    finally:
        await db.close()
