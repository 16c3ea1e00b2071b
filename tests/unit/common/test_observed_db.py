"""Transactions named for what runs them, timed always, and traced only inside a trace."""

from __future__ import annotations

from collections.abc import AsyncIterator
from functools import partial
from pathlib import Path

import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode
from prometheus_client import REGISTRY

from common import tracing
from common.db import Sql, Tx, open_database, reads, writes
from common.errors import NotFound
from common.observed_db import ObservedDatabase, observe, operation_name

ONE = Sql("SELECT 1")


async def module_body(tx: Tx) -> int:
    return int(await tx.fetchval(ONE))


class Store:
    def __init__(self, db: ObservedDatabase) -> None:
        self.db = db

    async def lookup(self) -> int:
        return int(await self.db.read(lambda tx: tx.fetchval(ONE)))

    async def change(self) -> int:
        async def apply(tx: Tx) -> int:
            return int(await tx.fetchval(ONE))

        return await self.db.write(apply)


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[ObservedDatabase]:
    observed = observe(open_database(f"sqlite:///{tmp_path}/t.db"))
    await observed.start()
    yield observed
    await observed.close()


def count(kind: str, operation: str) -> float:
    labels = {"kind": kind, "operation": operation}
    return REGISTRY.get_sample_value("db_transaction_duration_seconds_count", labels) or 0.0


def test_operation_names() -> None:
    async def store_order(tx: Tx) -> None: ...

    assert operation_name(module_body) == "test_observed_db.module_body"
    assert operation_name(partial(module_body)) == "test_observed_db.module_body"
    assert operation_name(store_order) == "test_operation_names.store_order"
    assert operation_name(lambda tx: None) == "test_observed_db.test_operation_names"
    assert operation_name(Store.change) == "Store.change"


async def test_every_transaction_is_timed_by_its_name(db: ObservedDatabase) -> None:
    store = Store(db)
    before = count("read", "Store.lookup"), count("write", "Store.apply")
    assert await store.lookup() == 1
    assert await store.lookup() == 1
    assert await store.change() == 1
    assert (count("read", "Store.lookup"), count("write", "Store.apply")) == (before[0] + 2, before[1] + 1)


async def test_spans_only_inside_a_trace(db: ObservedDatabase, spans: InMemorySpanExporter) -> None:
    store = Store(db)
    await store.lookup()  # the reconciler's polling: no request, no span
    assert spans.get_finished_spans() == ()
    tracer = tracing.tracer()
    assert tracer is not None
    with tracer.start_as_current_span("request") as request:
        await store.change()

        async def refuse(tx: Tx) -> None:
            raise NotFound("order ord_1 not found")

        with pytest.raises(NotFound):
            await db.write(refuse)
    write, refused, _ = spans.get_finished_spans()
    assert write.name == "write Store.apply"
    assert write.parent is not None
    assert write.parent.span_id == request.get_span_context().span_id
    assert write.attributes == {"db.system.name": "sqlite"}
    # A domain refusal raised in a body is the body's answer, not a failure of the database.
    assert refused.name == "write test_spans_only_inside_a_trace.refuse"
    assert refused.status.status_code is StatusCode.UNSET


class Named:
    """A store as the services write them: each method one transaction (common.db.writes/reads)."""

    def __init__(self, db: ObservedDatabase) -> None:
        self.db = db

    @writes
    async def _bump(self, tx: Tx, by: int) -> int:
        return int(await tx.fetchval(ONE)) + by

    @reads
    async def peek(self, tx: Tx, *, plus: int = 0) -> int:
        return int(await tx.fetchval(ONE)) + plus


async def test_a_store_method_is_its_transaction_and_its_name(db: ObservedDatabase) -> None:
    named = Named(db)
    before = count("write", "Named.bump"), count("read", "Named.peek")
    assert await named._bump(2) == 3
    assert await named.peek(plus=1) == 2
    assert (count("write", "Named.bump"), count("read", "Named.peek")) == (before[0] + 1, before[1] + 1)
    assert Named.peek.__name__ == "peek"
