"""PostgreSQL through asyncpg: a connection pool, prepared statements, NOTIFY at commit.

Transactions run at READ COMMITTED; a body that reads in order to write locks what it read
(`SELECT … FOR UPDATE`), so concurrent changes of one row — from any replica — are serialised by
the database. A deadlock or a serialization failure is retried with a fresh transaction: a body
is a function of what it reads, so running it again is safe.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import asyncpg

from common.db import Body, Row, Sql
from common.errors import Unavailable

log = logging.getLogger(__name__)

T = TypeVar("T")

_ATTEMPTS = 3
_RETRYABLE = (asyncpg.DeadlockDetectedError, asyncpg.SerializationError)
# The server or the network failed: the caller may try again later (503), nothing was decided.
_UNAVAILABLE = (
    OSError,
    TimeoutError,
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.CannotConnectNowError,
    asyncpg.TooManyConnectionsError,
    asyncpg.AdminShutdownError,
)
_NOTIFY = Sql("SELECT pg_notify($1, $2)")


def asyncpg_dsn(url: str) -> str:
    """`postgresql+asyncpg://…` (SQLAlchemy's spelling) → `postgresql://…` (libpq's)."""
    scheme, rest = url.split("://", 1)
    return f"postgresql://{rest}" if scheme.startswith("postgres") else url


class PostgresDatabase:
    is_sqlite = False

    def __init__(self, url: str, *, pool_size: int) -> None:
        self.url = url
        self.dsn = asyncpg_dsn(url)
        self.pool_size = pool_size
        self._pool: asyncpg.Pool | None = None

    async def start(self) -> None:
        try:
            self._pool = await asyncpg.create_pool(self.dsn, min_size=1, max_size=self.pool_size)
        except _UNAVAILABLE as exc:
            raise Unavailable(f"cannot connect to PostgreSQL: {exc}") from exc

    async def write(self, body: Body[T]) -> T:
        for attempt in range(1, _ATTEMPTS + 1):
            try:
                async with self._acquire() as conn:
                    tx = _PostgresTx(conn)
                    async with conn.transaction():
                        value = await body(tx)
                break
            except _RETRYABLE:
                if attempt == _ATTEMPTS:
                    raise
                log.info("transaction conflict; running it again", extra={"attempt": attempt})
            except _UNAVAILABLE as exc:
                raise Unavailable("the database is unavailable") from exc
        for hook in tx.hooks:
            try:
                hook()
            except Exception:
                log.exception("after-commit hook failed")
        return value

    async def read(self, body: Body[T]) -> T:
        try:
            async with self._acquire() as conn:
                return await body(_PostgresTx(conn))
        except _UNAVAILABLE as exc:
            raise Unavailable("the database is unavailable") from exc

    def _acquire(self) -> Any:
        assert self._pool is not None, "start() the database first"
        return self._pool.acquire()

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.close()


class _PostgresTx:
    __slots__ = ("_conn", "hooks")

    def __init__(self, conn: asyncpg.Connection) -> None:
        self._conn = conn
        self.hooks: list[Callable[[], None]] = []

    async def fetchrow(self, sql: Sql, *args: object) -> Row | None:
        row: Row | None = await self._conn.fetchrow(sql.postgres, *args)
        return row

    async def fetch(self, sql: Sql, *args: object) -> Sequence[Row]:
        return await self._conn.fetch(sql.postgres, *args)  # type: ignore[no-any-return]

    async def fetchval(self, sql: Sql, *args: object) -> Any:
        return await self._conn.fetchval(sql.postgres, *args)

    async def execute(self, sql: Sql, *args: object) -> int:
        status: str = await self._conn.execute(sql.postgres, *args)
        # "UPDATE 3", "DELETE 0", "INSERT 0 1": the count is the last word.
        last = status.rsplit(" ", 1)[-1]
        return int(last) if last.isdigit() else 0

    async def notify(self, channel: str, payload: str) -> None:
        await self._conn.execute(_NOTIFY.postgres, channel, payload)

    def after_commit(self, hook: Callable[[], None]) -> None:
        self.hooks.append(hook)
