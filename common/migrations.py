"""Versioned schema migrations (Alembic), one history per service.

`upgrade` brings a service's database to the newest revision it knows. On PostgreSQL it first
takes an advisory lock that is the service's own, so replicas that start together on an empty
database queue up: the first one migrates, the others find nothing left to do. A database at a
revision this code does not know (a newer release migrated it) is refused with one line rather
than run against a schema the code was not written for; so is a database made before migrations.

Each service keeps its revisions in `<service>/migrations/versions/` and its own version table,
so the two services may even share one PostgreSQL database.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import zlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, create_engine, inspect, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from common.db import is_sqlite
from common.db.hosts import Hosts
from common.db.postgres import asyncpg_dsn

# A table's options in both services' schema and migrations. SQLite: rows stored in their primary
# key's order, with no separate rowid and key index — one b-tree fewer to write per insert.
# (PostgreSQL ignores it.)
CLUSTERED: dict[str, Any] = {"sqlite_with_rowid": False}


class SchemaError(Exception):
    """The database's schema cannot be used by this code (the message is the one line to show)."""


@dataclass(frozen=True)
class History:
    """A service's migrations: where they live, and the table that records the revision."""

    service: str
    directory: Path
    version_table: str
    # A table the first revision creates: present without a version row, the database was
    # made by a release before migrations existed.
    marker_table: str

    @classmethod
    def of_service(cls, service: str, marker_table: str) -> History:
        """A service's history as ours are laid out: revisions in `<service>/migrations/`, the
        revision in `<order|payment>_schema_version`."""
        directory = Path(__file__).resolve().parent.parent / service / "migrations"
        return cls(service, directory, f"{service.removesuffix('_service')}_schema_version", marker_table)

    @property
    def lock_id(self) -> int:
        return zlib.crc32(f"shop:{self.service}:migrations".encode())

    def config(self, connection: Connection | None = None) -> Config:
        config = Config()
        config.set_main_option("script_location", str(self.directory))
        config.attributes["connection"] = connection
        config.attributes["version_table"] = self.version_table
        return config

    @property
    def head(self) -> str:
        head = ScriptDirectory.from_config(self.config()).get_current_head()
        assert head is not None, f"{self.directory} has no revisions"
        return head


# Alembic's own INFO lines ("Context impl SQLiteImpl.") say nothing to an operator; its
# "Running upgrade" lines are kept.
logging.getLogger("alembic.runtime.migration").addFilter(
    lambda record: record.levelno > logging.INFO or record.getMessage().startswith("Running upgrade")
)


# Alembic keeps the migration being run in module-level state (`alembic.context`): two at once
# in one process would run each other's revisions. (One process migrates one service, so this
# only serialises tests.)
_ONE_AT_A_TIME = threading.Lock()


async def upgrade(history: History, url: str) -> str:
    """Migrate to the newest revision; return it. Raises SchemaError."""
    if is_sqlite(url):
        return await asyncio.to_thread(_upgrade_sqlite, history, url)
    async with _serialised():
        return await _upgrade_postgres(history, url)


@asynccontextmanager
async def _serialised() -> AsyncIterator[None]:
    await asyncio.to_thread(_ONE_AT_A_TIME.acquire)
    try:
        yield
    finally:
        _ONE_AT_A_TIME.release()


async def _upgrade_postgres(history: History, url: str) -> str:
    # Connected by the services' own connect (common/db/hosts.py): the URL may name a primary and
    # its standbys, a form SQLAlchemy's URLs cannot hold.
    hosts = Hosts(asyncpg_dsn(url))
    engine = create_async_engine("postgresql+asyncpg://", async_creator=hosts.connect, poolclass=NullPool)
    try:
        async with engine.connect() as conn:
            # A session-level lock on this connection, held across the migration's own commit.
            await conn.execute(text("SELECT pg_advisory_lock(:id)"), {"id": history.lock_id})
            await conn.commit()
            try:
                return await conn.run_sync(lambda sync: _upgrade(history, sync))
            finally:
                await conn.execute(text("SELECT pg_advisory_unlock(:id)"), {"id": history.lock_id})
                await conn.commit()
    finally:
        await engine.dispose()


def _upgrade_sqlite(history: History, url: str) -> str:
    path = make_url(url).database
    if path and path != ":memory:":
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(make_url(url).set(drivername="sqlite+pysqlite"))
    try:
        with _ONE_AT_A_TIME, engine.connect() as conn:
            return _upgrade(history, conn)
    finally:
        engine.dispose()


def _upgrade(history: History, conn: Connection) -> str:
    current = current_revision(history, conn)
    script = ScriptDirectory.from_config(history.config())
    known = {rev.revision for rev in script.walk_revisions()}
    if current is not None and current not in known:
        raise SchemaError(
            f"the {history.service} database is at schema revision {current}, newer than this release knows "
            f"(its newest is {history.head}): run a release that knows it"
        )
    if current is None and inspect(conn).has_table(history.marker_table):
        raise SchemaError(
            f"the {history.service} database was made by a release without schema migrations: "
            "move it away (`make reset-data` removes ./data) and start again"
        )
    command.upgrade(history.config(conn), "head")
    conn.commit()
    return history.head


def current_revision(history: History, conn: Connection) -> str | None:
    context = MigrationContext.configure(conn, opts={"version_table": history.version_table})
    return context.get_current_revision()


def run_env() -> None:
    """The body of every service's `migrations/env.py`: run the revisions on the connection that
    `upgrade` hands over, recording them in the service's own version table."""
    from alembic import context

    connection = context.config.attributes.get("connection")
    if connection is None:
        raise SchemaError("migrations run through `python -m <service> migrate`, not the alembic command")
    context.configure(connection=connection, version_table=context.config.attributes["version_table"])
    with context.begin_transaction():
        context.run_migrations()
