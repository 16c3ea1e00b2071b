"""One database layer for SQLite (the single-process default) and PostgreSQL (any number of
replicas), chosen by URL.

A service writes each transaction once, as a method of its store that takes the transaction
after `self` and awaits only `tx`; `@writes` (or `@reads`) runs it in one:

    class Names:
        def __init__(self, db: Database) -> None:
            self.db = db

        @writes
        async def shout(self, tx: Tx, order_id: str) -> int:
            row = await tx.fetchrow(GET_NAME, order_id)
            return await tx.execute(SET_NAME, order_id, row["name"].upper())

    await names.shout(order_id)        # one transaction, named `Names.shout`

(`db.write(body)` takes any `async def body(tx)`; the decorators are that, with the method's
own arguments bound.) A method that runs exactly one statement is `@writes_one`: on PostgreSQL
that statement is its own transaction, with no BEGIN and COMMIT around it — a third of the round
trips of a short write (docs/operations.md#statements-per-order).

- PostgreSQL (asyncpg): the body runs on a pooled connection inside BEGIN … COMMIT; asyncpg
  prepares each statement once per connection and reuses it.
- SQLite (the standard library's sqlite3): on the event loop's thread, no hop to a thread; the
  writes that reach the loop in one turn are committed together (group commit, each in its own
  savepoint), reads run at once on a connection of their own (see sqlite.py for why).

SQL is written once in PostgreSQL's dialect with `$1, $2…` parameters (see `Sql`). Times are
integers, microseconds since the epoch (UTC), in both engines. Hooks registered with
`tx.after_commit` run on the event loop once the transaction is durable: that is where a service
tells anybody about a change.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from functools import update_wrapper
from typing import Annotated, Any, Concatenate, ParamSpec, Protocol, TypeVar

from pydantic import AfterValidator
from sqlalchemy.engine import make_url

T = TypeVar("T")
P = ParamSpec("P")

SQLITE_SCHEMES = ("sqlite",)
POSTGRES_SCHEMES = ("postgresql", "postgres", "postgresql+asyncpg")


class Row(Protocol):
    """A result row: by column name or position (asyncpg's Record and sqlite3.Row both are)."""

    def __getitem__(self, key: str | int) -> Any: ...


class Sql:
    """One statement, in PostgreSQL's syntax, with its SQLite form derived once.

    For SQLite `$n` becomes `?n`, and the row-locking clauses go (`FOR UPDATE`, `SKIP LOCKED`):
    SQLite has one writer at a time, so what the writer reads cannot change under it."""

    __slots__ = ("postgres", "sqlite")

    _LOCKING = re.compile(r"\s+FOR\s+UPDATE(\s+SKIP\s+LOCKED)?", re.IGNORECASE)
    _PARAM = re.compile(r"\$(\d+)")

    def __init__(self, text: str) -> None:
        self.postgres = " ".join(text.split())
        self.sqlite = self._PARAM.sub(r"?\1", self._LOCKING.sub("", self.postgres))

    def __repr__(self) -> str:
        return f"Sql({self.postgres!r})"


class Tx(Protocol):
    """What a transaction body may do. Every method is awaited; nothing else may be."""

    async def fetchrow(self, sql: Sql, *args: object) -> Row | None: ...

    async def fetch(self, sql: Sql, *args: object) -> Sequence[Row]: ...

    async def fetchval(self, sql: Sql, *args: object) -> Any: ...

    async def execute(self, sql: Sql, *args: object) -> int:
        """Run a statement; return the number of rows it changed."""
        ...

    async def notify(self, channel: str, payload: str) -> None:
        """PostgreSQL: NOTIFY at commit (other replicas' listeners hear it). SQLite: nothing —
        one process, whose own watchers are woken by an `after_commit` hook."""
        ...

    def after_commit(self, hook: Callable[[], None]) -> None:
        """Run `hook` on the event loop once this transaction has committed (not if it fails)."""
        ...


# A transaction body: a coroutine function of the transaction (see the module docstring).
Body = Callable[[Tx], Coroutine[Any, Any, T]]


class Database(Protocol):
    url: str
    is_sqlite: bool

    async def start(self) -> None: ...

    def write(self, body: Body[T], *, single_statement: bool = False) -> Awaitable[T]:
        """Run `body` in a transaction: committed if it returns, rolled back if it raises.
        `single_statement`: the body runs one statement, which is the transaction."""
        ...

    async def read(self, body: Body[T]) -> T:
        """Run `body` on a read-only view (it must not write)."""
        ...

    async def check(self, timeout_s: float) -> None:
        """Raise Unavailable unless the database can be used now, within `timeout_s` (the
        health probe's question, common/db_health.py)."""
        ...

    async def close(self) -> None: ...


class HasDatabase(Protocol):
    @property
    def db(self) -> Database: ...


H = TypeVar("H", bound=HasDatabase)
Method = Callable[Concatenate[H, Tx, P], Coroutine[Any, Any, T]]


class _Bound:
    """`method(owner, tx, *args, **kwargs)` as a transaction body; `func` names it (common.observed_db)."""

    __slots__ = ("args", "func", "kwargs", "owner")

    def __init__(self, func: Callable[..., Coroutine[Any, Any, Any]], owner: object, args: Any, kwargs: Any) -> None:
        self.func, self.owner, self.args, self.kwargs = func, owner, args, kwargs

    def __call__(self, tx: Tx) -> Coroutine[Any, Any, Any]:
        return self.func(self.owner, tx, *self.args, **self.kwargs)


def writes(method: Method[H, P, T]) -> Callable[Concatenate[H, P], Coroutine[Any, Any, T]]:
    """The method, run as one write transaction of `self.db` (its `tx` argument supplied)."""
    return _in_transaction(method, write=True)


def writes_one(method: Method[H, P, T]) -> Callable[Concatenate[H, P], Coroutine[Any, Any, T]]:
    """`@writes` for a method that runs exactly one statement (a second one is a bug, and
    raises): on PostgreSQL the statement is the transaction, without BEGIN and COMMIT."""
    return _in_transaction(method, write=True, single_statement=True)


def reads(method: Method[H, P, T]) -> Callable[Concatenate[H, P], Coroutine[Any, Any, T]]:
    """The method, run on a read-only view of `self.db` (it must not write)."""
    return _in_transaction(method, write=False)


def _in_transaction(
    method: Method[H, P, T], *, write: bool, single_statement: bool = False
) -> Callable[Concatenate[H, P], Coroutine[Any, Any, T]]:
    async def run(owner: H, /, *args: P.args, **kwargs: P.kwargs) -> T:
        body = _Bound(method, owner, args, kwargs)
        if write:
            result: T = await owner.db.write(body, single_statement=single_statement)
        else:
            result = await owner.db.read(body)
        return result

    update_wrapper(run, method)
    return run


class DatabaseUrlError(ValueError):
    pass


def is_sqlite(url: str) -> bool:
    return url.partition("://")[0] in SQLITE_SCHEMES


def check_url(url: str) -> str:
    """The URL if this layer can open it, else a DatabaseUrlError saying what is accepted.
    A PostgreSQL URL may name several hosts (common/db/hosts.py)."""
    scheme, sep, _ = url.partition("://")
    if not sep:
        raise DatabaseUrlError("is not a database URL (sqlite:///path or postgresql://…)")
    if scheme in POSTGRES_SCHEMES:
        from common.db.hosts import PostgresUrl

        PostgresUrl.parse(url)
        return url
    if scheme not in SQLITE_SCHEMES:
        raise DatabaseUrlError(f"{scheme}:// is not supported: use sqlite:///path or postgresql://…")
    try:
        make_url(url)
    except Exception:
        raise DatabaseUrlError("is not a database URL (sqlite:///path or postgresql://…)") from None
    return url


def open_database(url: str, *, pool_size: int = 10) -> Database:
    """A database for `url` (validated by `check_url`); call `start()` before use."""
    check_url(url)
    if is_sqlite(url):
        from common.db.sqlite import SqliteDatabase

        return SqliteDatabase(url)
    from common.db.postgres import PostgresDatabase

    return PostgresDatabase(url, pool_size=pool_size)


# For settings classes: `order_database_url: DatabaseUrl = "sqlite:///data/orders.db"` refuses
# a URL this layer cannot open at start, with one line naming the variable.
DatabaseUrl = Annotated[str, AfterValidator(check_url)]
