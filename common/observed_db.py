"""A `Database` that times every transaction and, inside a trace, gives each one a span.

    db = observe(open_database(url))      # the same interface; see common/db

A transaction is named for the function that runs it, read from the body's qualified name once
per body (its code object): `OrderStore.record` for the store's method (`@writes`, common/db),
`Idempotency.claim` for `Idempotency._claim`, `Store.apply` for an `apply` body defined in a
method of `Store`, `module.body` for a module's function. The span (`write OrderStore.record`)
and the histogram's `operation` label use that name; the time is what the caller waits,
queueing for the SQLite writer and group commit included, since that is what a request spends.

Spans only inside a trace: the reconciler's polling once a second, outside any request, would
otherwise make a root span per replica per second. No statement text, no parameter and no URL
goes into an attribute (a URL may carry a password).
"""

from __future__ import annotations

import time
from functools import partial
from types import CodeType
from typing import Any, TypeVar

from opentelemetry import trace
from opentelemetry.trace import SpanKind, Status, StatusCode
from prometheus_client import Histogram

from common import tracing
from common.db import Body, Database
from common.errors import ServiceError, Unavailable

T = TypeVar("T")

TRANSACTION_TIME = Histogram(
    "db_transaction_duration_seconds",
    "Time a caller waits for its transaction (queueing and group commit included)",
    ["kind", "operation"],
    buckets=(0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
)

_names: dict[tuple[str, CodeType | int], tuple[str, Any]] = {}


def operation_name(body: Any) -> str:
    """What a transaction body does, from where it is defined (see the module docstring)."""
    function = getattr(body, "func", body)  # functools.partial
    qualname = getattr(function, "__qualname__", None) or type(function).__name__
    parts = [part for part in qualname.split(".") if part not in ("<locals>", "<lambda>")]
    if not parts:
        return "transaction"
    if len(parts) == 1:
        module = str(getattr(function, "__module__", "") or "").rpartition(".")[2]
        return f"{module}.{parts[0]}" if module else parts[0]
    return f"{parts[0]}.{parts[-1].lstrip('_')}"


def _named(kind: str, body: Any) -> tuple[str, Any]:
    """(name, histogram child) of a body, computed once per body's code."""
    function = getattr(body, "func", body)
    key = (kind, getattr(function, "__code__", None) or id(type(function)))
    found = _names.get(key)
    if found is None:
        name = operation_name(body)
        found = _names[key] = (name, TRANSACTION_TIME.labels(kind, name))
    return found


class ObservedDatabase:
    """Delegates to the database it wraps (`inner`); see the module docstring."""

    def __init__(self, inner: Database) -> None:
        self.inner = inner
        self.url = inner.url
        self.is_sqlite = inner.is_sqlite
        self._attributes = {"db.system.name": "sqlite" if inner.is_sqlite else "postgresql"}

    async def start(self) -> None:
        await self.inner.start()

    async def close(self) -> None:
        await self.inner.close()

    async def check(self, timeout_s: float) -> None:
        await self.inner.check(timeout_s)  # the health probe: neither a transaction nor timed as one

    async def write(self, body: Body[T], *, single_statement: bool = False) -> T:
        return await self._observed("write", partial(self.inner.write, single_statement=single_statement), body)

    async def read(self, body: Body[T]) -> T:
        return await self._observed("read", self.inner.read, body)

    async def _observed(self, kind: str, run: Any, body: Body[T]) -> T:
        name, timer = _named(kind, body)
        tracer = tracing.tracer()
        if tracer is None:
            started = time.perf_counter()
            try:
                result: T = await run(body)
                return result
            finally:
                timer.observe(time.perf_counter() - started)
        return await self._traced(tracer, kind, name, timer, run, body)

    async def _traced(self, tracer: trace.Tracer, kind: str, name: str, timer: Any, run: Any, body: Body[T]) -> T:
        span = None
        if trace.get_current_span().get_span_context().is_valid:
            span = tracer.start_span(f"{kind} {name}", kind=SpanKind.CLIENT, attributes=self._attributes)
        started = time.perf_counter()
        try:
            result: T = await run(body)
            return result
        except BaseException as exc:
            # A domain refusal raised in a body (NotFound…) is an answer, not a database failure.
            if span is not None and (not isinstance(exc, ServiceError) or isinstance(exc, Unavailable)):
                span.set_status(Status(StatusCode.ERROR, type(exc).__name__))
            raise
        finally:
            timer.observe(time.perf_counter() - started)
            if span is not None:
                span.end()


def observe(db: Database) -> ObservedDatabase:
    return ObservedDatabase(db)
