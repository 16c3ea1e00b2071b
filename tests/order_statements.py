"""The statements and commits one `POST /v1/orders` costs on PostgreSQL — the whole flow, gateway
→ order service → payment service → order service, both services' databases on one server —
counted by the server (tests/pg_statements.py). Shared by the integration test and the
benchmark's `statements` section.

The services also run statements when no one calls them (the reconciler's and the webhook
worker's polls, the LISTEN connection's safety net, health checks): a quiet window before the
orders measures that rate, and what it would have run in each window is taken out — at the pace
it kept in that window (`_idle_pace`).
"""

from __future__ import annotations

import asyncio
import math
import time
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from tests import postgres
from tests.harness import ApiKeys, Stack
from tests.integration.helpers import order_body
from tests.pg_statements import SETTINGS as COUNTING_SETTINGS
from tests.pg_statements import Delta, StatementCounter

DATABASES = ("orders", "payments")
# Issue 18's goals, per order.
MAX_STATEMENTS = 6
MAX_STATEMENTS_KEYED = 8
MAX_COMMITS = 4
SHOWN = 0.05  # the breakdown lists the statements run at least this often per order
QUIET_S = 10.0  # the window that measures the idle services' rate


@contextmanager
def counted_stack(workdir: Path, keys: ApiKeys | None = None) -> Iterator[tuple[Stack, postgres.Server]]:
    """A stack whose two services keep their data in two databases of one PostgreSQL server that
    counts statements; yields the stack and the server."""
    with postgres.server(options=COUNTING_SETTINGS) as server:
        env = {
            "ORDER_DATABASE_URL": postgres.create_database(server.url, DATABASES[0]),
            "PAYMENT_DATABASE_URL": postgres.create_database(server.url, DATABASES[1]),
        }
        stack = Stack(workdir, env=env, keys=keys or ApiKeys())
        try:
            stack.start()
            yield stack, server
        finally:
            stack.stop()


async def _place(client: httpx.AsyncClient, count: int, concurrency: int, keyed: bool) -> None:
    """`count` orders paid by a card that succeeds at once; with `keyed`, each its own key."""
    queue = iter(range(count))

    async def worker() -> None:
        for _ in queue:
            headers = {"Idempotency-Key": f"count-{uuid.uuid4().hex}"} if keyed else {}
            reply = await client.post("/v1/orders", json=order_body(), headers=headers)
            assert reply.status_code == 201, reply.text
            assert reply.json()["status"] == "paid", reply.text

    await asyncio.gather(*(worker() for _ in range(concurrency)))


async def _whole_seconds_since(start: float) -> None:
    """Until a whole number of seconds has passed since `start`: the idle services' polls run
    each second (or each half), so a window of whole seconds holds a whole number of them, as
    many as the quiet rate says, and their subtraction leaves no remainder."""
    elapsed = time.monotonic() - start
    await asyncio.sleep(math.ceil(elapsed) - elapsed)


def _idle_pace(window: Delta, quiet: Delta) -> float:
    """How busy the idle services' own work was in the window, against the quiet window's pace.

    Under load their polls run late (each waits for the busy event loop), so fewer of them fall
    in the window than the quiet rate says. The statements only they run show by how much: those
    the quiet window ran and the orders did not add to (at most twice the quiet rate's count)."""
    share = window.seconds / quiet.seconds
    idle_only = [
        query for query, calls in quiet.calls.items() if calls * share >= 1 and window.calls[query] <= 2 * calls * share
    ]
    expected = sum(quiet.calls[query] * share for query in idle_only)
    return sum(window.calls[query] for query in idle_only) / expected if expected else 1.0


def _per_order(window: Delta, quiet: Delta, orders: int) -> dict[str, Any]:
    """The window's counts per order, less what the idle services ran in it: the quiet
    window's counts, scaled to the window's length and to their pace in it."""
    pace = _idle_pace(window, quiet)
    scale = pace * window.seconds / quiet.seconds

    def net(field: str) -> float:
        value: float = (getattr(window, field) - getattr(quiet, field) * scale) / orders
        return round(value, 2)

    per_order = {
        query: round((window.calls[query] - quiet.calls[query] * scale) / orders, 2)
        for query in window.calls.keys() | quiet.calls.keys()
    }
    breakdown = sorted(((q, n) for q, n in per_order.items() if n >= SHOWN), key=lambda item: (-item[1], item[0]))
    return {
        "orders": orders,
        "window_s": round(window.seconds, 1),
        "statements_per_order": net("statements"),
        "commits_per_order": net("commits"),
        "rollbacks_per_order": net("rollbacks"),
        "nested_per_order": net("nested"),
        "idle_pace": round(pace, 2),
        "raw_statements": window.statements,
        "raw_commits": window.commits,
        "breakdown": [{"query": query, "per_order": calls} for query, calls in breakdown],
    }


async def count(
    stack: Stack,
    server: postgres.Server,
    orders: int = 100,
    concurrency: int = 4,
    warmup: int = 20,
    headers: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """Orders without a key, then with one, each kind in its own window; the counts per order.

    The warm-up comes first: the driver prepares each statement and looks up its types on first
    use, on each pooled connection, which later orders do not pay again."""
    client_headers = dict(headers if headers is not None else stack.headers)
    async with (
        httpx.AsyncClient(base_url=stack.url, headers=client_headers, timeout=30) as client,
        StatementCounter(server, DATABASES) as counter,
    ):
        for keyed in (False, True):
            await _place(client, warmup, concurrency, keyed)
        start = await counter.snapshot()
        await asyncio.sleep(QUIET_S)
        before = await counter.snapshot()
        quiet = counter.between(start, before)
        rows = []
        for keyed in (False, True):
            await _place(client, orders, concurrency, keyed)
            await _whole_seconds_since(before.at)
            after = await counter.snapshot()
            rows.append({"idempotency_key": keyed, **_per_order(counter.between(before, after), quiet, orders)})
            before = after
    return {
        "concurrency": concurrency,
        "background": {
            "window_s": round(quiet.seconds, 1),
            "statements_per_s": round(quiet.statements / quiet.seconds, 2),
            "commits_per_s": round(quiet.commits / quiet.seconds, 2),
            "note": "the services' own statements when idle, measured in a quiet window and subtracted",
        },
        "goals": {
            "statements": MAX_STATEMENTS,
            "statements_keyed": MAX_STATEMENTS_KEYED,
            "commits": MAX_COMMITS,
        },
        "rows": rows,
    }


def describe(result: Mapping[str, Any]) -> str:
    """The figures and the breakdown, as text (for an assertion message or a log)."""
    background = result["background"]
    lines = [
        f"per POST /v1/orders, {result['concurrency']} clients; background "
        f"{background['statements_per_s']} statements/s and {background['commits_per_s']} commits/s "
        f"(quiet {background['window_s']} s) subtracted"
    ]
    for row in result["rows"]:
        goal = MAX_STATEMENTS_KEYED if row["idempotency_key"] else MAX_STATEMENTS
        lines.append(
            f"{'with' if row['idempotency_key'] else 'without'} an Idempotency-Key ({row['orders']} orders in "
            f"{row['window_s']} s, idle work at {row['idle_pace']} of its quiet pace): "
            f"{row['statements_per_order']} statements (goal ≤ {goal}), "
            f"{row['commits_per_order']} commits (goal ≤ {MAX_COMMITS}), "
            f"{row['rollbacks_per_order']} rollbacks, {row['nested_per_order']} nested statements"
        )
        lines += [f"  {line['per_order']:6.2f}  {line['query'][:160]}" for line in row["breakdown"]]
    return "\n".join(lines)
