"""docs/database-failures.md#what-a-client-sees, failover: the services are given a URL naming a
primary and its synchronous standby
(`postgresql://…@primary,standby/db?target_session_attrs=read-write`); under the load of 32 retrying
clients with Idempotency-Keys the primary is killed (SIGKILL of the postmaster) and the standby
promoted (`pg_ctl promote`). No replica is restarted: the pools and the LISTEN connections find the
new primary by themselves, the clients' retries get their answers, the watchers resume, and the
books on the new primary hold — every order a client was answered 201 is there with its payment, no
key made two orders, every order agrees with its payment, and what the kill left in doubt was
finished by a reconciler.

The pair is built for real on free ports (tests/postgres.py `primary_and_standby`: initdb,
`pg_basebackup -R`, `synchronous_standby_names`); two replicas of each service and two gateways.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests import postgres
from tests.artifacts import record
from tests.conftest import require_tool
from tests.fault.database import cluster_on, database_names, seen_while_away
from tests.fault.scenario import Scenario
from tests.harness import Cluster

pytestmark = pytest.mark.postgres

FAILOVER_LOAD_S = float(os.environ.get("FAULT_FAILOVER_LOAD_S", "15"))


@pytest.fixture
def pair() -> Iterator[tuple[postgres.Server, postgres.Server]]:
    require_tool(
        postgres.standby_available(), "PostgreSQL server binaries (initdb, pg_ctl, pg_basebackup) are not installed"
    )
    with postgres.primary_and_standby() as servers:
        yield servers


@pytest.fixture
def cluster(pair: tuple[postgres.Server, postgres.Server], tmp_path: Path) -> Iterator[Cluster]:
    primary, standby = pair
    orders, payments = database_names()
    for name in (orders, payments):
        postgres.create_database(primary.url, name)
    created = cluster_on(
        tmp_path / "cluster",
        postgres.failover_url(primary, standby, orders),
        postgres.failover_url(primary, standby, payments),
    )
    try:
        yield created.start()
    finally:
        created.stop()


async def test_the_primary_dies_and_the_standby_takes_over(
    cluster: Cluster, pair: tuple[postgres.Server, postgres.Server]
) -> None:
    primary, standby = pair
    pids = {name: service.proc.pid for name, service in cluster.services.items() if service.proc}
    async with Scenario(cluster, "database: failover to the standby") as run:
        await run.warm_up()
        await run.until(FAILOVER_LOAD_S / 3)
        run.mark_fault()
        primary.kill()
        await asyncio.to_thread(standby.promote)
        run.mark_back()
        # Orders are made again on the new primary, by the same replicas.
        await asyncio.wait_for(run.load.wait_for_orders(50), timeout=60)
        await run.until(FAILOVER_LOAD_S)
    # The books on the new primary held (the scenario raised otherwise); nothing was restarted.
    assert {name: s.proc.pid for name, s in cluster.services.items() if s.proc} == pids
    assert all(service.running for service in cluster.services.values())
    seen = seen_while_away(run.load)
    record(
        "database-report",
        "failover to the standby",
        {**seen, **run.load.figures(fault_at=run.fault_at, back_at=run.back_at)},
    )
    assert not seen["forbidden"], seen
