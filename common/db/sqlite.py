"""SQLite through the standard library's sqlite3: one writer thread with group commit, one reader.

Why threads, and why whole transactions: sqlite3 blocks, so it cannot run on the event loop, and
a hop to a thread costs more than a small statement does. So a transaction body is run whole in
the writer thread — one hop — and the writer commits every transaction waiting at that moment
together, each in a savepoint of its own (so one that fails rolls back alone): under load one
commit serves many requests. Results go back to the loop in one call per batch.

WAL mode with synchronous=NORMAL: a committed transaction is in the write-ahead log before its
caller hears of it, so it survives a crash (or SIGKILL) of the process; only a power cut or an
OS crash may lose the last commits before a checkpoint. synchronous=FULL would add an fsync to
every commit; for the machine-crash guarantee use PostgreSQL. Readers never wait for the writer.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import queue
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

# Transactions committed together at most (a bound on how long the first of them waits).
MAX_BATCH = 64
BUSY_TIMEOUT_MS = 5000


class SqliteDatabase:
    is_sqlite = True

    def __init__(self, url: str) -> None:
        self.url = url
        self.path = make_url(url).database or ":memory:"
        self._writer: _Worker | None = None
        self._reader: _Worker | None = None

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        in_memory = self.path == ":memory:"
        if not in_memory:
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self._writer = _Worker(lambda: _connect(self.path, readonly=False), loop, "sqlite-writer", batched=True)
        # The writer first: it switches the file to WAL mode, which needs the file to itself.
        await self._writer.ready
        # An in-memory database exists once per connection: there, the writer reads too.
        self._reader = (
            self._writer
            if in_memory
            else _Worker(lambda: _connect(self.path, readonly=True), loop, "sqlite-reader", batched=False)
        )
        await self._reader.ready

    async def write(self, body: Body[T]) -> T:
        assert self._writer is not None, "start() the database first"
        return await self._writer.submit(body)

    async def read(self, body: Body[T]) -> T:
        assert self._reader is not None, "start() the database first"
        return await self._reader.submit(body)

    async def close(self) -> None:
        workers = {id(w): w for w in (self._writer, self._reader) if w is not None}
        for worker in workers.values():
            await worker.stop()


def _connect(path: str, *, readonly: bool) -> sqlite3.Connection:
    # isolation_level=None: sqlite3 sends no BEGIN of its own; the worker says when.
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=True)
    conn.row_factory = sqlite3.Row
    conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
    if path != ":memory:" and not readonly:
        conn.execute("PRAGMA journal_mode=WAL")  # kept in the file: readers need not ask
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
    # The caller's context (its request id, its trace): the body runs in it, in the worker thread.
    context: contextvars.Context = field(default_factory=contextvars.copy_context)

    def run(self, tx: _SqliteTx) -> Any:
        return self.context.run(lambda: _run_to_end(self.body(tx)))


@dataclass
class _Outcome:
    job: _Job
    value: Any = None
    error: BaseException | None = None
    hooks: list[Callable[[], None]] = field(default_factory=list)


class _Worker:
    """A thread that owns one connection and runs the bodies submitted to it."""

    def __init__(
        self,
        connect: Callable[[], sqlite3.Connection],
        loop: asyncio.AbstractEventLoop,
        name: str,
        *,
        batched: bool,
    ) -> None:
        self._connect = connect
        self._loop = loop
        self._batched = batched
        self._jobs: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self.ready: asyncio.Future[None] = loop.create_future()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def submit(self, body: Body[T]) -> asyncio.Future[T]:
        future: asyncio.Future[T] = self._loop.create_future()
        self._jobs.put(_Job(body, future))
        return future

    async def stop(self) -> None:
        self._jobs.put(None)
        await asyncio.to_thread(self._thread.join)

    def _run(self) -> None:
        try:
            conn = self._connect()
        except sqlite3.Error as exc:
            self._loop.call_soon_threadsafe(_settle_ready, self.ready, exc)
            return
        self._loop.call_soon_threadsafe(_settle_ready, self.ready, None)
        try:
            while (job := self._jobs.get()) is not None:
                batch = [job]
                while len(batch) < MAX_BATCH:
                    try:
                        more = self._jobs.get_nowait()
                    except queue.Empty:
                        break
                    if more is None:
                        self._jobs.put(None)  # finish this batch, then stop
                        break
                    batch.append(more)
                outcomes = self._commit(conn, batch) if self._batched else [_read(conn, j) for j in batch]
                self._loop.call_soon_threadsafe(_settle, outcomes)
        finally:
            conn.close()

    @staticmethod
    def _commit(conn: sqlite3.Connection, batch: list[_Job]) -> list[_Outcome]:
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
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            log.error("sqlite commit failed", extra={"error": str(exc)})
            failure = Unavailable("the database is unavailable")
            failure.__cause__ = exc
            return [_Outcome(job, error=failure) for job in batch]
        return outcomes


def _read(conn: sqlite3.Connection, job: _Job) -> _Outcome:
    try:
        return _Outcome(job, job.run(_SqliteTx(conn)))
    except sqlite3.OperationalError as exc:
        failure = Unavailable("the database is unavailable")
        failure.__cause__ = exc
        return _Outcome(job, error=failure)
    except Exception as exc:
        return _Outcome(job, error=exc)


def _settle_ready(future: asyncio.Future[None], error: BaseException | None) -> None:
    if error is None:
        future.set_result(None)
    else:
        future.set_exception(error)


def _settle(outcomes: list[_Outcome]) -> None:
    """On the event loop: run each committed transaction's hooks, then wake its caller."""
    for outcome in outcomes:
        for hook in outcome.hooks:
            try:
                hook()
            except Exception:
                log.exception("after-commit hook failed")
        future = outcome.job.future
        if future.done():  # the caller was cancelled; the transaction stands regardless
            continue
        if outcome.error is not None:
            future.set_exception(outcome.error)
        else:
            future.set_result(outcome.value)
