"""Benchmark 2d: what one `POST /v1/orders` costs PostgreSQL — statements and commits per order,
without and with an Idempotency-Key, counted by the server (pg_stat_statements, pg_stat_database)
on a stack of its own (tests/order_statements.py: the services' idle rate is measured in a quiet
window and taken out). The counts do not depend on the machine, only on the code: issue 18's
goals are ≤ 6 statements (≤ 8 with a key) and ≤ 4 commits per order."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from bench import auth
from bench.config import Plan
from tests import order_statements, pg_statements

# A few clients at once, as a small shop's traffic: enough that the pools hold several
# connections, few enough that every order finds one free.
CLIENTS = 4


def unavailable() -> str | None:
    if pg_statements.available():
        return None
    return "PostgreSQL server binaries (initdb, pg_ctl) or its pg_stat_statements extension are not installed"


def run(plan: Plan, workdir: Path) -> dict[str, Any]:
    with order_statements.counted_stack(workdir / "statements", keys=auth.KEYS) as (stack, server):
        counted = order_statements.count(
            stack, server, orders=plan.statement_orders, concurrency=CLIENTS, headers=auth.headers()
        )
        return asyncio.run(counted)
