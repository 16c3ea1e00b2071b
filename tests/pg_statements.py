"""Statements and commits of chosen databases, counted by the PostgreSQL server itself: the calls
of `pg_stat_statements` (every statement a client sent, `BEGIN`, `COMMIT` and a driver's own
queries included) and `xact_commit` of `pg_stat_database`.

The server must be started with `SETTINGS` (the extension only counts when preloaded). The
counter reads from the `postgres` database and keeps only the rows of the databases it was
given, so its own queries are never counted. It takes snapshots and subtracts them, rather than
resetting the server's counters: nothing is lost if two counters share a server."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

import asyncpg

from tests import postgres

# track=all: statements run inside functions are counted too (as nested, apart from the
# top-level ones a client sent); track_utility is on by default, so BEGIN, COMMIT, RESET ALL…
# are counted like any statement.
SETTINGS = (
    "-c shared_preload_libraries=pg_stat_statements -c pg_stat_statements.track=all "
    "-c pg_stat_statements.max=10000"
)

# A backend adds its commits to pg_stat_database at most once a second while busy, and at the
# latest 10 s after it went idle (PostgreSQL's PGSTAT_IDLE_INTERVAL): a count read sooner after
# the last commit can miss some of them. pg_stat_statements counts at once.
FLUSH_S = 11.0


def _library_folder() -> Path | None:
    pg_config = postgres.tool("pg_config")
    if Path(pg_config).exists() or shutil.which(pg_config):
        done = subprocess.run([pg_config, "--pkglibdir"], capture_output=True, text=True, check=False)
        if done.returncode == 0 and done.stdout.strip():
            return Path(done.stdout.strip())
    return Path(postgres.tool("postgres")).resolve().parent.parent / "lib"


def available() -> bool:
    """PostgreSQL's server binaries and its pg_stat_statements extension (PostgreSQL's contrib)."""
    if not postgres.available():
        return False
    folder = _library_folder()
    return folder is not None and (folder / "pg_stat_statements.so").exists()


@dataclass(frozen=True)
class Snapshot:
    at: float  # time.monotonic()
    calls: Counter[str]  # "database: statement" → executions (top-level)
    nested: int  # executions of statements run inside functions or procedures
    commits: int
    rollbacks: int


@dataclass(frozen=True)
class Delta:
    """What happened between two snapshots."""

    seconds: float
    calls: Counter[str]
    nested: int
    commits: int
    rollbacks: int

    @property
    def statements(self) -> int:
        return sum(self.calls.values())

    @classmethod
    def between(cls, before: Snapshot, after: Snapshot) -> Delta:
        calls = Counter(after.calls)
        calls.subtract(before.calls)
        return cls(
            seconds=after.at - before.at,
            calls=+calls,  # drops the statements that did not run in the window
            nested=after.nested - before.nested,
            commits=after.commits - before.commits,
            rollbacks=after.rollbacks - before.rollbacks,
        )


class StatementCounter:
    """`async with StatementCounter(server_url, ["orders", "payments"]) as counter:` then
    `await counter.snapshot()` before and after; `Delta.between(before, after)`."""

    def __init__(self, server_url: str, databases: Sequence[str]) -> None:
        self.server_url = server_url  # a URL of the server's `postgres` database
        self.databases = list(databases)
        self._conn: asyncpg.Connection | None = None

    async def __aenter__(self) -> StatementCounter:
        self._conn = await asyncpg.connect(self.server_url)
        await self._conn.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._conn is not None:
            await self._conn.close()
            self._conn = None

    async def snapshot(self) -> Snapshot:
        conn = self._conn
        assert conn is not None, "use the counter in `async with`"
        at = time.monotonic()
        rows = await conn.fetch(
            """
            SELECT d.datname, s.query, s.toplevel, s.calls
            FROM pg_stat_statements s JOIN pg_database d ON d.oid = s.dbid
            WHERE d.datname = ANY($1::text[])
            """,
            self.databases,
        )
        totals = await conn.fetchrow(
            """
            SELECT coalesce(sum(xact_commit), 0)::bigint AS commits,
                   coalesce(sum(xact_rollback), 0)::bigint AS rollbacks
            FROM pg_stat_database WHERE datname = ANY($1::text[])
            """,
            self.databases,
        )
        assert totals is not None
        calls: Counter[str] = Counter()
        nested = 0
        for row in rows:
            if row["toplevel"]:
                calls[f"{row['datname']}: {' '.join(row['query'].split())}"] += row["calls"]
            else:
                nested += row["calls"]
        return Snapshot(at, calls, nested, int(totals["commits"]), int(totals["rollbacks"]))

    async def settled_snapshot(self) -> Snapshot:
        """A snapshot once every commit made so far is in pg_stat_database (see FLUSH_S)."""
        await asyncio.sleep(FLUSH_S)
        return await self.snapshot()
