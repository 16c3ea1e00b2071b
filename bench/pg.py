"""The PostgreSQL set-up the benchmark measures: one throw-away PostgreSQL server (durable: its
default fsync at commit, unlike the tests' cluster) and on it one cluster (tests/harness.Cluster)
of 2 order-service and 2 payment-service replicas with one gateway aimed round-robin at both order
replicas — plus one more gateway per order replica, aimed at that replica alone — and, on
databases of their own on the same server, one replica of each service (`single`: the three
processes of the SQLite stack, on PostgreSQL), which the PostgreSQL-against-SQLite figures compare.

So "1 order replica" and "2 order replicas" are the same processes on the same database, reached
through a pinned gateway or through the round-robin one: the two rows differ in nothing but how
many order replicas take the calls (the idle replica costs its LISTEN connection and its
reconciler's polls, and is counted). The pinned gateways also give the push-across-replicas
benchmark a watcher whose WatchOrder is known to run on A or on B. Everything starts together:
on 2 cores the start-up is most of the PostgreSQL sections' time.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import asyncpg

from bench import auth, tracing_cost
from bench.procs import Server, stop_together
from tests import postgres
from tests.harness import Cluster, Stack, free_port

log = logging.getLogger(__name__)

REPLICAS = 2


@dataclass
class PostgresSetup:
    server_version: str
    postmaster_pid: int
    cluster: Cluster  # its one gateway (urls[0]) spreads calls over every order replica
    pinned: list[str]  # gateway URLs, one per order replica, in the order of cluster.order_targets
    pinned_pids: list[int]
    single: Stack  # one replica of each service, as the SQLite stack has


def _parent(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])


def _server_facts(url: str) -> tuple[str, int]:
    """The server's version and its main process: the parent of the backend serving this query
    (read while that backend lives: it exits with its connection)."""

    async def ask() -> tuple[str, int]:
        conn = await asyncpg.connect(url)
        try:
            version = str(await conn.fetchval("SHOW server_version"))
            return version, _parent(int(await conn.fetchval("SELECT pg_backend_pid()")))
        finally:
            await conn.close()

    return asyncio.run(ask())


def unavailable() -> str | None:
    return None if postgres.available() else "PostgreSQL server binaries (initdb, pg_ctl) are not on PATH"


def _pinned_gateways(cluster: Cluster, workdir: Path) -> list[tuple[Server, str]]:
    """One gateway per order replica of `cluster`, aimed at that replica only."""
    base = cluster.services["gateway.1"].env
    gateways = []
    for number, target in enumerate(cluster.order_targets, start=1):
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        env = base | {"GATEWAY_PORT": str(port), "GATEWAY_PUBLIC_URL": url, "ORDER_SERVICE_TARGET": target}
        gateways.append((Server("gateway", [], workdir / f"gateway_pinned_{number}.log", env), url))
    return gateways


@contextmanager
def setup(workdir: Path) -> Iterator[PostgresSetup]:
    with postgres.postgres_cluster(durable=True) as server_url:
        cluster = Cluster(
            workdir / "cluster",
            order_database_url=postgres.create_database(server_url, "orders"),
            payment_database_url=postgres.create_database(server_url, "payments"),
            replicas=REPLICAS,
            gateways=1,
            keys=auth.KEYS,
        )
        single = Stack(
            workdir / "single",
            env={
                "ORDER_DATABASE_URL": postgres.create_database(server_url, "orders_single"),
                "PAYMENT_DATABASE_URL": postgres.create_database(server_url, "payments_single"),
                **tracing_cost.UNTRACED_ENV,
            },
            keys=auth.KEYS,
        )
        gateways: list[tuple[Server, str]] = []
        try:
            cluster.launch()
            single.launch()
            # Started before their services answer: a gateway's channels wait for readiness.
            gateways = _pinned_gateways(cluster, workdir)
            cluster.wait_ready(timeout=90)
            single.wait_ready(timeout=60)
            for server, url in gateways:
                server.wait_http(f"{url}/readyz", timeout=60)
            version, postmaster = _server_facts(server_url)
            pinned = [u for _, u in gateways]
            yield PostgresSetup(version, postmaster, cluster, pinned, [s.pid for s, _ in gateways], single)
        finally:
            procs = [server.proc for server, _ in gateways]
            procs += [s.proc for s in (*cluster.services.values(), *single.services.values()) if s.proc is not None]
            stop_together(procs)
