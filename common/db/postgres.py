"""PostgreSQL through asyncpg: a connection pool, prepared statements, NOTIFY at commit.

Transactions run at READ COMMITTED; a body that reads in order to write locks what it read
(`SELECT … FOR UPDATE`), so concurrent changes of one row — from any replica — are serialised by
the database. A deadlock or a serialization failure is retried with a fresh transaction: a body
is a function of what it reads, so running it again is safe.

When the server goes away (a restart, a failover, `pg_terminate_backend`) the transactions in
flight fail with Unavailable — 503 with Retry-After at the gateway, nothing decided — and the pool
replaces its dead connections as they are next used, on whichever host of the URL takes writes
(hosts.py). `check` is the health probe's question (common/db_health.py).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import asyncpg

from common.db import Body, Row, Sql
from common.db.hosts import Hosts
from common.errors import Unavailable

log = logging.getLogger(__name__)

T = TypeVar("T")

_ATTEMPTS = 3
_RETRYABLE = (asyncpg.DeadlockDetectedError, asyncpg.SerializationError)
# The server or the network failed, or the server is not (or no longer) the primary: the caller
# may try again later (503), nothing was decided. Class 57 is the operator's: a shutdown, a
# terminated backend, a server starting up; class 53 its resources (connections, disk).
# InternalClientError: asyncpg's own, which is what a connection cut in the middle of an
# operation can leave (a server killed: "cannot switch to state …; another operation is in
# progress"); TargetServerAttributeNotMatched, no host takes writes, is one too.
_UNAVAILABLE = (
    OSError,
    TimeoutError,
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.OperatorInterventionError,
    asyncpg.InsufficientResourcesError,
    asyncpg.ReadOnlySQLTransactionError,
    asyncpg.exceptions.InternalClientError,
)
# A statement that has not been answered in this long is given up (503): a server that stops
# answering without closing its connections (a partition, a frozen host) would otherwise hold
# them until TCP gives up, minutes later. Far above any statement of the services.
STATEMENT_TIMEOUT_S = 30.0
# How the health probe's own connection shows in pg_stat_activity.
PROBE_NAME = "health probe"
# How long the probe may spend replacing a connection that just failed: a server that is up
# takes a new connection in milliseconds.
RECONNECT_BUDGET_S = 0.5
_NOTIFY = Sql("SELECT pg_notify($1, $2)")
_PING = "SELECT 1"


async def _keep_session(conn: asyncpg.Connection) -> None:
    """What a connection needs on its way back to the pool, beyond what asyncpg always does (roll
    back a transaction left open — a body cancelled mid-way — and drop listener callbacks):
    nothing. asyncpg's default reset is a round trip of four statements at every release
    (`CLOSE ALL; RESET ALL; UNLISTEN *; SELECT pg_advisory_unlock_all()`) undoing session state
    that no statement of these services creates: no cursor outside a transaction, no SET, no
    LISTEN (the change listener has a connection of its own, changes.py), no advisory lock, no
    temporary table. tests/unit/order_service/test_postgres_sessions.py holds them to that."""


def asyncpg_dsn(url: str) -> str:
    """`postgresql+asyncpg://…` (SQLAlchemy's spelling) → `postgresql://…` (libpq's)."""
    scheme, rest = url.split("://", 1)
    return f"postgresql://{rest}" if scheme.startswith("postgres") else url


def unavailable() -> Unavailable:
    return Unavailable("the database is unavailable")


class PostgresDatabase:
    is_sqlite = False

    def __init__(self, url: str, *, pool_size: int) -> None:
        self.url = url
        self.hosts = Hosts(asyncpg_dsn(url))
        self.pool_size = pool_size
        self._pool: asyncpg.Pool | None = None
        self._probe: asyncpg.Connection | None = None

    async def start(self) -> None:
        try:
            self._pool = await asyncpg.create_pool(
                min_size=1,
                max_size=self.pool_size,
                connect=self.hosts.connect,
                command_timeout=STATEMENT_TIMEOUT_S,
                reset=_keep_session,
            )
        except _UNAVAILABLE as exc:
            raise Unavailable(f"cannot connect to PostgreSQL: {exc}") from exc

    async def write(self, body: Body[T], *, single_statement: bool = False) -> T:
        for attempt in range(1, _ATTEMPTS + 1):
            try:
                async with self._acquire() as conn:
                    if single_statement:
                        # The statement is its own transaction (autocommit): no BEGIN, no COMMIT.
                        tx = _PostgresTx(conn, statements_left=1)
                        value = await body(tx)
                    else:
                        tx = _PostgresTx(conn)
                        async with conn.transaction():
                            value = await body(tx)
                break
            except _RETRYABLE:
                if attempt == _ATTEMPTS:
                    raise
                log.info("transaction conflict; running it again", extra={"attempt": attempt})
            except _UNAVAILABLE as exc:
                raise unavailable() from exc
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
            raise unavailable() from exc

    async def check(self, timeout_s: float) -> None:
        """Unavailable unless the server takes writes now. Asked on a connection of its own: a
        pool that a burst of requests has used up is busy, not down, and must not make the
        replica NOT_SERVING. A probe connection that fails is replaced at once, within
        RECONNECT_BUDGET_S, before the answer: a connection that was ended
        (`pg_terminate_backend`) is not an outage. Without a probe connection (the server was
        away), the next is sought on every host, each for up to hosts.CONNECT_TIMEOUT_S."""
        try:
            if self._probe is None:
                await self._open_probe(timeout_s)
                return
            try:
                await self._probe.fetchval(_PING, timeout=timeout_s)
            except _UNAVAILABLE:
                self._drop_probe()
                async with asyncio.timeout(RECONNECT_BUDGET_S):
                    await self._open_probe(timeout_s)
        except _UNAVAILABLE as exc:
            self._drop_probe()
            raise unavailable() from exc

    async def _open_probe(self, timeout_s: float) -> None:
        self._probe = await self.hosts.connect(server_settings={"application_name": PROBE_NAME})
        await self._probe.fetchval(_PING, timeout=timeout_s)

    def _drop_probe(self) -> None:
        if self._probe is not None:
            self._probe.terminate()  # not close(): that waits for a server that may not answer
            self._probe = None

    def _acquire(self) -> Any:
        assert self._pool is not None, "start() the database first"
        return self._pool.acquire()

    async def close(self) -> None:
        self._drop_probe()
        if self._pool is not None:
            await self._pool.close()


class _PostgresTx:
    __slots__ = ("_conn", "_left", "hooks")

    def __init__(self, conn: asyncpg.Connection, statements_left: int | None = None) -> None:
        self._conn = conn
        # A single-statement write (`writes_one`) may run one: a second would be a transaction
        # of its own, committed apart from the first.
        self._left = statements_left
        self.hooks: list[Callable[[], None]] = []

    def _conn_for(self, sql: Sql) -> asyncpg.Connection:
        if self._left is not None:
            if self._left == 0:
                raise RuntimeError(f"a single-statement write ran a second statement: {sql!r}")
            self._left -= 1
        return self._conn

    async def fetchrow(self, sql: Sql, *args: object) -> Row | None:
        row: Row | None = await self._conn_for(sql).fetchrow(sql.postgres, *args)
        return row

    async def fetch(self, sql: Sql, *args: object) -> Sequence[Row]:
        return await self._conn_for(sql).fetch(sql.postgres, *args)  # type: ignore[no-any-return]

    async def fetchval(self, sql: Sql, *args: object) -> Any:
        return await self._conn_for(sql).fetchval(sql.postgres, *args)

    async def execute(self, sql: Sql, *args: object) -> int:
        status: str = await self._conn_for(sql).execute(sql.postgres, *args)
        # "UPDATE 3", "DELETE 0", "INSERT 0 1": the count is the last word.
        last = status.rsplit(" ", 1)[-1]
        return int(last) if last.isdigit() else 0

    async def notify(self, channel: str, payload: str) -> None:
        await self._conn_for(_NOTIFY).execute(_NOTIFY.postgres, channel, payload)

    def after_commit(self, hook: Callable[[], None]) -> None:
        self.hooks.append(hook)
