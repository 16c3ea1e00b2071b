"""Statements and transactions of chosen databases, counted by the PostgreSQL server itself.

- Statements: the calls of `pg_stat_statements`, every statement a client sent (`BEGIN`,
  `COMMIT` and a driver's own queries included; a simple query of several statements counts each).
- Commits: the transactions of those databases in the server's statement log (`log_statement=all`
  in JSON, which names each statement's virtual transaction), less those that ended in an error
  or a `ROLLBACK`. Not `xact_commit` of `pg_stat_database`: from PostgreSQL 15 a backend hands its
  commit count to the shared statistics only along with table or WAL statistics, so the commits
  of transactions that touch no table (a pool's reset of a connection, a health check's
  `SELECT 1`) stay in the backend until it next touches a table or exits — for as long as a
  LIFO pool (asyncpg's) leaves that connection idle. The log has every transaction at once.
  (Transactions that run no statement — a driver preparing one outside a transaction — are not
  in the log; after the warm-up that prepared them they do not happen.)

The server must be started with `SETTINGS`. The counter reads from the `postgres` database and
keeps only the rows of the databases it was given, so its own queries are never counted. It takes
snapshots and subtracts them, rather than resetting the server's counters."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import time
import uuid
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

import asyncpg
import orjson

from tests import postgres

# track=all: statements run inside functions are counted too (as nested, apart from the
# top-level ones a client sent); track_utility is on by default, so BEGIN, COMMIT, RESET ALL…
# are counted like any statement. The log: one JSON object a line, one file, never rotated;
# without the statements' parameters (only their transactions are read).
SETTINGS = (
    "-c shared_preload_libraries=pg_stat_statements -c pg_stat_statements.track=all "
    "-c pg_stat_statements.max=10000 "
    "-c logging_collector=on -c log_destination=jsonlog -c log_directory=log -c log_filename=statements.log "
    "-c log_rotation_age=0 -c log_rotation_size=0 -c log_statement=all -c log_parameter_max_length=0"
)
# Where SETTINGS makes the server write its JSON log, in its data folder.
LOG = Path("log") / "statements.json"
MARK_TIMEOUT_S = 10.0


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
    log_offset: int  # just past the line of the snapshot's mark


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


def transactions(lines: bytes, databases: Sequence[str]) -> tuple[int, int]:
    """(commits, rollbacks) of the transactions that ran a statement in `lines` of the JSON log:
    a transaction is a backend's virtual transaction id; it rolled back if one of its
    statements was `ROLLBACK` or failed."""
    seen: set[tuple[int, str]] = set()
    failed: set[tuple[int, str]] = set()
    for line in lines.splitlines():
        entry = orjson.loads(line)
        if entry.get("dbname") not in databases or "vxid" not in entry:
            continue
        key = (entry["pid"], entry["vxid"])
        message: str = entry.get("message", "")
        if entry["error_severity"] == "LOG" and message.startswith(("statement: ", "execute ")):
            seen.add(key)
            if message.split(": ", 1)[-1].strip().rstrip(";").upper() in ("ROLLBACK", "ABORT"):
                failed.add(key)
        elif entry["error_severity"] in ("ERROR", "FATAL"):
            failed.add(key)
    return len(seen - failed), len(seen & failed)


class StatementCounter:
    """`async with StatementCounter(server, ["orders", "payments"]) as counter:` then
    `before = await counter.snapshot()`, … , `counter.since(before)`."""

    def __init__(self, server: postgres.Server, databases: Sequence[str]) -> None:
        self.server = server
        self.databases = list(databases)
        self.log = server.data / LOG
        self._conn: asyncpg.Connection | None = None
        self._scanned = 0  # the log before this offset holds no mark to come

    async def __aenter__(self) -> StatementCounter:
        self._conn = await asyncpg.connect(self.server.url)
        await self._conn.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._conn is not None:
            await self._conn.close()
            self._conn = None

    async def _log_mark(self, conn: asyncpg.Connection) -> int:
        """The log's offset just past a statement of the counter's own: every line another
        backend wrote before lies before it (they all reach the log through one pipe, in order).
        The logger is another process, with no event to await: its file is read until the line
        is there."""
        mark = f"pg_statements mark {uuid.uuid4().hex}".encode()
        await conn.execute(f"SELECT '{mark.decode()}'")
        deadline = time.monotonic() + MARK_TIMEOUT_S
        with self.log.open("rb") as file:
            while True:
                file.seek(self._scanned)
                text = file.read()
                if (found := text.find(mark)) >= 0:
                    end = self._scanned + text.index(b"\n", found) + 1
                    self._scanned = end
                    return end
                if time.monotonic() > deadline:
                    raise TimeoutError(f"the server's log {self.log} did not show the counter's mark")
                await asyncio.sleep(0.01)

    async def snapshot(self) -> Snapshot:
        conn = self._conn
        assert conn is not None, "use the counter in `async with`"
        at = time.monotonic()
        log_offset = await self._log_mark(conn)
        rows = await conn.fetch(
            """
            SELECT d.datname, s.query, s.toplevel, s.calls
            FROM pg_stat_statements s JOIN pg_database d ON d.oid = s.dbid
            WHERE d.datname = ANY($1::text[])
            """,
            self.databases,
        )
        calls: Counter[str] = Counter()
        nested = 0
        for row in rows:
            if row["toplevel"]:
                calls[f"{row['datname']}: {' '.join(row['query'].split())}"] += row["calls"]
            else:
                nested += row["calls"]
        return Snapshot(at, calls, nested, log_offset)

    def between(self, before: Snapshot, after: Snapshot) -> Delta:
        calls = Counter(after.calls)
        calls.subtract(before.calls)
        with self.log.open("rb") as file:
            file.seek(before.log_offset)
            commits, rollbacks = transactions(file.read(after.log_offset - before.log_offset), self.databases)
        return Delta(
            seconds=after.at - before.at,
            calls=+calls,  # drops the statements that did not run in the window
            nested=after.nested - before.nested,
            commits=commits,
            rollbacks=rollbacks,
        )
