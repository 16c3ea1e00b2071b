"""Issue 18's goals on PostgreSQL, counted by the server (pg_stat_statements, pg_stat_database):
per `POST /v1/orders`, the whole flow, at most 6 statements without an Idempotency-Key, 8 with
one, and 4 commits. tests/order_statements.py says how they are counted; a failure prints where
the statements went."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from tests import order_statements, pg_statements, postgres
from tests.conftest import require_tool

pytestmark = pytest.mark.postgres

ORDERS = 200
# The idle services' statements are taken out by their rate; what is left over by the window's
# edges stays within a few statements, so within this share of one per order at ORDERS orders.
MARGIN = 0.05


def require_counting() -> None:
    require_tool(
        pg_statements.available(),
        "PostgreSQL server binaries (initdb, pg_ctl) or its pg_stat_statements extension are not installed",
    )


def test_the_counter_counts_what_a_client_ran() -> None:
    """The instrument on a known pattern: statements of the databases named, each statement of
    a simple query, BEGIN and COMMIT; one commit per transaction, a failed one a rollback; the
    other databases' statements left out."""
    require_counting()
    with postgres.server(options=pg_statements.SETTINGS) as server:
        delta = asyncio.run(_known_pattern(server, postgres.create_database(server.url, "counted")))
    assert (delta.statements, delta.commits, delta.rollbacks) == (5, 2, 1), delta
    assert delta.calls["counted: BEGIN"] == delta.calls["counted: COMMIT"] == 1, delta


async def _known_pattern(server: postgres.Server, url: str) -> pg_statements.Delta:
    async with pg_statements.StatementCounter(server, ["counted"]) as counter:
        conn = await asyncpg.connect(url)
        elsewhere = await asyncpg.connect(server.url)
        try:
            before = await counter.snapshot()
            await conn.execute("SELECT 1; SELECT 2")  # one transaction, two statements
            async with conn.transaction():  # BEGIN, SELECT, COMMIT
                await conn.fetchval("SELECT $1::int", 3)
            with pytest.raises(asyncpg.DivisionByZeroError):
                await conn.execute("SELECT 1/0")  # no statement done, a rollback
            await elsewhere.execute("SELECT 4")  # another database
            return counter.between(before, await counter.snapshot())
        finally:
            await conn.close()
            await elsewhere.close()


@pytest.fixture(scope="module")
def counted(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    require_counting()
    workdir: Path = tmp_path_factory.mktemp("pg-statements")
    with order_statements.counted_stack(workdir) as (stack, server):
        return asyncio.run(order_statements.count(stack, server, orders=ORDERS))


def _row(counted: dict[str, Any], keyed: bool) -> dict[str, Any]:
    row: dict[str, Any] = next(r for r in counted["rows"] if r["idempotency_key"] is keyed)
    # The counter did count: every order runs statements and commits.
    assert row["raw_statements"] >= ORDERS, order_statements.describe(counted)
    assert row["raw_commits"] >= ORDERS, order_statements.describe(counted)
    return row


def test_statements_per_order_without_a_key(counted: dict[str, Any]) -> None:
    row = _row(counted, keyed=False)
    assert row["statements_per_order"] <= order_statements.MAX_STATEMENTS + MARGIN, order_statements.describe(counted)


def test_statements_per_order_with_a_key(counted: dict[str, Any]) -> None:
    row = _row(counted, keyed=True)
    assert row["statements_per_order"] <= order_statements.MAX_STATEMENTS_KEYED + MARGIN, order_statements.describe(
        counted
    )


@pytest.mark.parametrize("keyed", [False, True], ids=["without_key", "with_key"])
def test_commits_per_order(counted: dict[str, Any], keyed: bool) -> None:
    row = _row(counted, keyed)
    assert row["commits_per_order"] <= order_statements.MAX_COMMITS + MARGIN, order_statements.describe(counted)
