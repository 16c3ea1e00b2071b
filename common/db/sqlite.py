"""SQLite through the standard library's sqlite3, on the event loop's own thread, with group commit.

Why no threads: in WAL mode with synchronous=NORMAL a statement or a commit does no fsync — it is
microseconds of work — while a hop to a thread and back costs more than that work (the GIL
changes hands twice, and the thread must be woken; bench/README.md has the figure). So:

- reads run at once, on a connection of their own (in WAL mode they never wait for the writer);
- a write is queued, and the loop runs the queue as one transaction as soon as the callbacks
  already due have run — so the writes of every request that reached that point in the same
  turn of the loop commit together (group commit), each in a savepoint of its own, so that one
  that fails rolls back alone. Under load one commit serves many requests;
- checkpoints — the only step that does fsync — run in a thread of their own, off the loop
  (sqlite3 releases the GIL while SQLite works).

Durability: a committed transaction is in the write-ahead log before its caller hears of it, so
it survives a crash (or SIGKILL) of the process; only a power cut or an OS crash may lose the last
commits before a checkpoint. synchronous=FULL would add an fsync to every commit; for the
machine-crash guarantee use PostgreSQL.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import os
import sqlite3
import threading
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy.engine import make_url

from common.db import Body, Row, Sql
from common.errors import Unavailable

log = logging.getLogger(__name__)

T = TypeVar("T")

# How long a statement may wait for a lock held by another process before the request fails
# with 503. Short: it would hold up the whole event loop (and SQLite is one process's database).
BUSY_TIMEOUT_MS = 1000
# The checkpointer moves the write-ahead log into the database this often (and when asked to).
CHECKPOINT_EVERY_S = 1.0
_CHECK = "SELECT count(*) FROM sqlite_master"


class SqliteDatabase:
    is_sqlite = True

    def __init__(self, url: str) -> None:
        self.url = url
        self.path = make_url(url).database or ":memory:"
        self._writer: sqlite3.Connection | None = None
        self._reader: sqlite3.Connection | None = None
        self._queue: list[_Job] = []
        self._flush_scheduled = False
        self._checkpointer: _Checkpointer | None = None
        self._inode: int | None = None

    async def start(self) -> None:
        in_memory = self.path == ":memory:"
        if not in_memory:
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self._writer = _connect(self.path, readonly=False)
        # An in-memory database exists once per connection: there, the writer reads too.
        self._reader = self._writer if in_memory else _connect(self.path, readonly=True)
        if not in_memory:
            self._checkpointer = _Checkpointer(self.path)
            self._inode = os.stat(self.path).st_ino

    async def check(self, timeout_s: float) -> None:
        """Unavailable when the file cannot be read, or is no longer the file this process
        opened (removed or replaced: what it writes would be lost at the next start). One
        process and a local file: there is no outage to wait out, so nothing else."""
        assert self._reader is not None, "start() the database first"
        try:
            if self._inode is not None and os.stat(self.path).st_ino != self._inode:
                raise FileNotFoundError(f"{self.path} was replaced")
            self._reader.execute(_CHECK).fetchone()
        except (OSError, sqlite3.Error) as exc:
            raise Unavailable("the database is unavailable") from exc

    async def read(self, body: Body[T]) -> T:
        assert self._reader is not None, "start() the database first"
        try:
            return _run_to_end(body(_SqliteTx(self._reader)))
        except sqlite3.OperationalError as exc:
            raise Unavailable("the database is unavailable") from exc

    def write(self, body: Body[T], *, single_statement: bool = False) -> asyncio.Future[T]:
        """Queue `body` for the next group commit; the future is settled once it is durable.
        (`single_statement` changes nothing here: the group's transaction is shared anyway.)"""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self._queue.append(_Job(body, future))
        if not self._flush_scheduled:
            self._flush_scheduled = True
            loop.call_soon(self._flush)
        return future

    def _flush(self) -> None:
        self._flush_scheduled = False
        batch, self._queue = self._queue, []
        assert self._writer is not None
        outcomes = _commit(self._writer, batch)
        for outcome in outcomes:
            outcome.settle()

    async def close(self) -> None:
        while self._queue:  # what was asked before the close is still committed
            self._flush()
        if self._checkpointer is not None:
            await asyncio.to_thread(self._checkpointer.stop)
        for conn in {id(c): c for c in (self._writer, self._reader) if c is not None}.values():
            conn.close()


def _connect(path: str, *, readonly: bool) -> sqlite3.Connection:
    # isolation_level=None: sqlite3 sends no BEGIN of its own; _commit says when.
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    conn.row_factory = sqlite3.Row
    conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
    if path != ":memory:" and not readonly:
        conn.execute("PRAGMA journal_mode=WAL")  # kept in the file: readers need not ask
        # Checkpoints are the checkpointer's, off the loop (they fsync).
        conn.execute("PRAGMA wal_autocheckpoint=0")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("PRAGMA foreign_keys=ON")
    if readonly:
        conn.execute("PRAGMA query_only=ON")
    return conn


class _SqliteTx:
    """`common.db.Tx` on a sqlite3 connection. Its methods are coroutines that never suspend, so
    a body that awaits only them runs to its end in one `send` (see `_run_to_end`)."""

    __slots__ = ("_conn", "hooks")

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn
        self.hooks: list[Callable[[], None]] = []

    async def fetchrow(self, sql: Sql, *args: object) -> Row | None:
        row: Row | None = self._conn.execute(sql.sqlite, args).fetchone()
        return row

    async def fetch(self, sql: Sql, *args: object) -> Sequence[Row]:
        return self._conn.execute(sql.sqlite, args).fetchall()

    async def fetchval(self, sql: Sql, *args: object) -> Any:
        row = self._conn.execute(sql.sqlite, args).fetchone()
        return None if row is None else row[0]

    async def execute(self, sql: Sql, *args: object) -> int:
        return self._conn.execute(sql.sqlite, args).rowcount

    async def notify(self, channel: str, payload: str) -> None:
        return None

    def after_commit(self, hook: Callable[[], None]) -> None:
        self.hooks.append(hook)


def _run_to_end(coroutine: Coroutine[Any, Any, T]) -> T:
    try:
        coroutine.send(None)
    except StopIteration as done:
        return done.value  # type: ignore[no-any-return]
    coroutine.close()
    raise RuntimeError("a transaction body awaited something other than its transaction")


@dataclass
class _Job:
    body: Body[Any]
    future: asyncio.Future[Any]
    # The caller's context (its request id, its trace): the body runs in it.
    context: contextvars.Context = field(default_factory=contextvars.copy_context)

    def run(self, tx: _SqliteTx) -> Any:
        return self.context.run(lambda: _run_to_end(self.body(tx)))


@dataclass
class _Outcome:
    job: _Job
    value: Any = None
    error: BaseException | None = None
    hooks: list[Callable[[], None]] = field(default_factory=list)

    def settle(self) -> None:
        """The transaction is committed (or failed): run its hooks, then wake its caller."""
        for hook in self.hooks:
            try:
                hook()
            except Exception:
                log.exception("after-commit hook failed")
        future = self.job.future
        if future.done():  # the caller was cancelled; the transaction stands regardless
            return
        if self.error is not None:
            future.set_exception(self.error)
        else:
            future.set_result(self.value)


def _commit(conn: sqlite3.Connection, batch: list[_Job]) -> list[_Outcome]:
    if len(batch) == 1:
        return [_commit_one(conn, batch[0])]
    outcomes: list[_Outcome] = []
    try:
        conn.execute("BEGIN IMMEDIATE")
        for job in batch:
            conn.execute("SAVEPOINT job")
            tx = _SqliteTx(conn)
            try:
                value = job.run(tx)
            except Exception as exc:
                conn.execute("ROLLBACK TO job")
                conn.execute("RELEASE job")
                outcomes.append(_Outcome(job, error=exc))
            else:
                conn.execute("RELEASE job")
                outcomes.append(_Outcome(job, value, hooks=tx.hooks))
        conn.execute("COMMIT")
    except sqlite3.Error as exc:
        failure = _failed(conn, exc)
        return [_Outcome(job, error=failure) for job in batch]
    return outcomes


def _commit_one(conn: sqlite3.Connection, job: _Job) -> _Outcome:
    """A batch of one needs no savepoint: its failure is the transaction's."""
    tx = _SqliteTx(conn)
    try:
        conn.execute("BEGIN IMMEDIATE")
        try:
            value = job.run(tx)
        except Exception as exc:
            conn.execute("ROLLBACK")
            if isinstance(exc, sqlite3.OperationalError):
                raise
            return _Outcome(job, error=exc)
        conn.execute("COMMIT")
    except sqlite3.Error as exc:
        return _Outcome(job, error=_failed(conn, exc))
    return _Outcome(job, value, hooks=tx.hooks)


def _failed(conn: sqlite3.Connection, exc: sqlite3.Error) -> Unavailable:
    """The transaction could not be committed (locked by another process, disk full, …)."""
    if conn.in_transaction:
        conn.execute("ROLLBACK")
    log.error("sqlite commit failed", extra={"error": str(exc)})
    failure = Unavailable("the database is unavailable")
    failure.__cause__ = exc
    return failure


class _Checkpointer:
    """A thread that checkpoints the write-ahead log every CHECKPOINT_EVERY_S (PASSIVE: it never
    makes the writer or the readers wait)."""

    def __init__(self, path: str) -> None:
        self._path = path
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="sqlite-checkpointer", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        conn = sqlite3.connect(self._path, isolation_level=None)
        conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        try:
            while not self._stopping.wait(CHECKPOINT_EVERY_S):
                try:
                    conn.execute("PRAGMA wal_checkpoint(PASSIVE)")
                except sqlite3.Error as exc:
                    log.warning("sqlite checkpoint failed", extra={"error": str(exc)})
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        finally:
            conn.close()

    def stop(self) -> None:
        self._stopping.set()
        self._thread.join()
