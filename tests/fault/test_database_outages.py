"""docs/database-failures.md#what-a-client-sees, one promise after another on one cluster under
load: every connection ended by `pg_terminate_backend`, a restart in fast mode, a restart in
immediate mode (a crash and its recovery), and the server stopped for DB_DOWN_S — two replicas of
each service and two gateways on one PostgreSQL server, 32 retrying clients with Idempotency-Keys,
and the watched order followed over gRPC, SSE and WebSocket from version 0.

After each fault the load must make progress again (orders created) before the next: the pools
and the LISTEN connections came back by themselves, nothing was restarted. What the clients saw
meanwhile: 201, or 503 problem+json with Retry-After (or 409 with Retry-After for a key whose
request was cut off and is still leased) — never a 500, a broken connection or a deadline
passed. At the end the books are audited (tests/fault/ledger.py): nothing answered 201 is lost,
no key made two orders, every order agrees with its payment, nothing is left in doubt, and every
watcher saw every version once, in order.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

import asyncpg
import httpx
import pytest

from tests import postgres
from tests.artifacts import record
from tests.conftest import require_tool
from tests.fault.database import cluster_on, database_names, seen_while_away
from tests.fault.scenario import Scenario
from tests.harness import Cluster

pytestmark = pytest.mark.postgres

DB_DOWN_S = float(os.environ.get("FAULT_DB_DOWN_S", "10"))
# Orders the load must create after each fault before the next one comes.
PROGRESS = 30

_TERMINATE_ALL = """
SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()
"""


@pytest.fixture
def server() -> Iterator[postgres.Server]:
    require_tool(postgres.available(), "PostgreSQL server binaries (initdb, pg_ctl) are not installed")
    with postgres.server() as started:
        yield started


@pytest.fixture
def cluster(server: postgres.Server, tmp_path: Path) -> Iterator[Cluster]:
    orders, payments = database_names()
    created = cluster_on(
        tmp_path / "cluster",
        postgres.create_database(server.url, orders),
        postgres.create_database(server.url, payments),
    )
    try:
        yield created.start()
    finally:
        created.stop()


async def _terminate_all(server: postgres.Server) -> int:
    conn = await asyncpg.connect(server.url)
    try:
        return int(await conn.fetchval(_TERMINATE_ALL))
    finally:
        await conn.close()


def faults(server: postgres.Server) -> dict[str, Callable[[], Awaitable[object]]]:
    async def stopped_for_a_while() -> None:
        await asyncio.to_thread(server.stop, "fast")
        await asyncio.sleep(DB_DOWN_S)
        await asyncio.to_thread(server.start)

    async def restart(mode: str) -> None:
        await asyncio.to_thread(server.stop, mode)
        await asyncio.to_thread(server.start)

    return {
        "pg_terminate_backend of every connection": lambda: _terminate_all(server),
        "restart, fast": lambda: restart("fast"),
        "restart, immediate": lambda: restart("immediate"),
        f"stopped for {DB_DOWN_S:g} s": stopped_for_a_while,
    }


async def _readiness(url: str, stop: asyncio.Event, changes: list[tuple[float, int]], ready: asyncio.Event) -> None:
    """/readyz of one gateway, every 0.1 s: each change of its status and when; `ready` is set
    while it says 200."""
    async with httpx.AsyncClient(base_url=url, timeout=5) as http:
        while not stop.is_set():
            try:
                status = (await http.get("/readyz")).status_code
            except httpx.HTTPError:
                status = 0
            if not changes or changes[-1][1] != status:
                changes.append((time.monotonic(), status))
            if status == 200:
                ready.set()
            else:
                ready.clear()
            await asyncio.sleep(0.1)


async def test_the_database_fails_in_every_way_under_load(cluster: Cluster, server: postgres.Server) -> None:
    pids = {name: service.proc.pid for name, service in cluster.services.items() if service.proc}
    phases: dict[str, dict[str, object]] = {}
    windows: dict[str, tuple[float, float]] = {}
    readiness: list[tuple[float, int]] = []
    stop_watching, ready = asyncio.Event(), asyncio.Event()
    async with Scenario(cluster, "database: every outage in turn") as run:
        watching = asyncio.create_task(_readiness(cluster.urls[0], stop_watching, readiness, ready))
        await run.warm_up()
        run.mark_fault()
        for name, fault in faults(server).items():
            began = time.monotonic()
            await fault()
            back = time.monotonic()
            await asyncio.wait_for(run.load.wait_for_orders(PROGRESS), timeout=60)
            windows[name] = (began, time.monotonic())
            phases[name] = {
                "fault_s": round(back - began, 3),
                "orders_again_after_s": round(time.monotonic() - back, 3),
            }
        run.mark_back()
        # Orders can flow again before the poller's next look at /readyz: wait for its 200 (or
        # time out), rather than stop it at an instant that may fall before it.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(ready.wait(), timeout=30)
        stop_watching.set()
        await watching
    # The books held (the scenario raised otherwise); nothing was restarted.
    assert {name: s.proc.pid for name, s in cluster.services.items() if s.proc} == pids
    seen = seen_while_away(run.load)
    for name, phase in phases.items():
        began, ended = windows[name]
        inside = [a for a in run.load.attempts if began <= a.started < ended]
        phase["answers"] = dict(Counter(a.kind for a in inside).most_common())
        phase["readyz"] = [(round(at - began, 2), status) for at, status in readiness if began <= at < ended]
    record("database-report", "every outage in turn", {**seen, "phases": phases})
    assert not seen["forbidden"], seen
    # Halfway through the stop (health says NOT_SERVING within 2 s of the loss) the gateway said
    # not ready, and in the end ready again. Read as "the status in force at", since the poller
    # records changes only: the 503 may have begun in the phase before.
    middle = windows[f"stopped for {DB_DOWN_S:g} s"][0] + DB_DOWN_S / 2
    in_force = [status for at, status in readiness if at <= middle][-1:]
    assert in_force == [503], readiness
    assert readiness[-1][1] == 200, readiness
