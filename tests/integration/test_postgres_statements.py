"""Issue 18's goals on PostgreSQL, counted by the server (pg_stat_statements, pg_stat_database):
per `POST /v1/orders`, the whole flow, at most 6 statements without an Idempotency-Key, 8 with
one, and 4 commits. tests/order_statements.py says how they are counted."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from tests import order_statements, pg_statements
from tests.conftest import require_tool

pytestmark = pytest.mark.postgres

ORDERS = 100


@pytest.fixture(scope="module")
def counted(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    require_tool(
        pg_statements.available(),
        "PostgreSQL server binaries (initdb, pg_ctl) or its pg_stat_statements extension are not installed",
    )
    workdir: Path = tmp_path_factory.mktemp("pg-statements")
    with order_statements.counted_stack(workdir) as (stack, server_url):
        return asyncio.run(order_statements.count(stack, server_url, orders=ORDERS))


def _row(counted: dict[str, Any], keyed: bool) -> dict[str, Any]:
    row: dict[str, Any] = next(r for r in counted["rows"] if r["idempotency_key"] is keyed)
    # The counter did count: every order runs statements and commits.
    assert row["raw_statements"] >= ORDERS, order_statements.describe(counted)
    assert row["raw_commits"] >= ORDERS, order_statements.describe(counted)
    return row


def test_statements_per_order_without_a_key(counted: dict[str, Any]) -> None:
    row = _row(counted, keyed=False)
    assert row["statements_per_order"] <= order_statements.MAX_STATEMENTS, order_statements.describe(counted)


def test_statements_per_order_with_a_key(counted: dict[str, Any]) -> None:
    row = _row(counted, keyed=True)
    assert row["statements_per_order"] <= order_statements.MAX_STATEMENTS_KEYED, order_statements.describe(counted)


@pytest.mark.parametrize("keyed", [False, True], ids=["without_key", "with_key"])
def test_commits_per_order(counted: dict[str, Any], keyed: bool) -> None:
    row = _row(counted, keyed)
    assert row["commits_per_order"] <= order_statements.MAX_COMMITS, order_statements.describe(counted)
