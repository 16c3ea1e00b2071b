"""One soak run: the PostgreSQL set-up of docs/guarantees.md#any-replica-any-request — two replicas
of each gRPC service and two gateways on one PostgreSQL server — under the steady mixed load of
shoppers.py and the watchers of watchers.py for `Plan.seconds`, sampled every `Plan.sample_s`
(samples.py); then the books are audited (tests/fault/ledger.py) and the figures made
(figures.py)."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import httpx
from grpc_health.v1 import health_pb2, health_pb2_grpc

from bench.soak.figures import figures
from bench.soak.samples import Sampler
from bench.soak.shoppers import Shopper, Tally, fresh_connections
from bench.soak.watchers import Watcher
from common.grpc_client import open_channel
from tests import postgres
from tests.fault.ledger import Audit, audit, read_postgres_ledger
from tests.harness import Cluster, ipv4_target

CHANNELS = ("sse", "websocket", "long_poll", "grpc")
SETTLE_S = 30.0


@dataclass(frozen=True)
class Plan:
    seconds: float = 600.0
    # The share of the run before which memory and open files may still grow (caches, pools).
    warm_up_share: float = 0.2
    orders_per_s: float = 10.0  # from all shoppers together
    shoppers: int = 8
    sample_s: float = 5.0
    # A request on a new connection this often (bench/soak/shoppers.py fresh_connections).
    fresh_connection_s: float = 0.5


class Soak:
    def __init__(self, cluster: Cluster, server: postgres.Server, plan: Plan) -> None:
        self.cluster = cluster
        self.server = server
        self.plan = plan
        self.tally = Tally()
        self.stop = asyncio.Event()
        target = ipv4_target(cluster.order_ports)
        self.watchers = [
            Watcher(self.tally, channel, url, cluster.headers, target) for channel in CHANNELS for url in cluster.urls
        ]
        self.channel_states: dict[str, list[str]] = {}
        pids = {name: service.proc.pid for name, service in cluster.services.items() if service.proc}
        databases = {
            _database(cluster.order_database_url): "orders",
            _database(cluster.payment_database_url): "payments",
        }
        self.sampler = Sampler(pids, _metrics_urls(cluster), server.url, databases)

    async def run(self) -> dict[str, Any]:
        plan, cluster = self.plan, self.cluster
        interval = plan.shoppers / plan.orders_per_s
        shoppers = [
            Shopper(self.tally, cluster.urls[n % len(cluster.urls)], cluster.headers, n, interval)
            for n in range(plan.shoppers)
        ]
        tasks = [asyncio.create_task(s.run(self.stop)) for s in shoppers]
        tasks += [asyncio.create_task(w.run(self.stop)) for w in self.watchers]
        tasks.append(
            asyncio.create_task(
                fresh_connections(self.tally, cluster.urls[0], cluster.headers, plan.fresh_connection_s, self.stop)
            )
        )
        for name in ("order_service.1", "payment_service.1"):
            port = cluster.services[name].env[_variable(name, "SERVICE_PORT")]
            tasks.append(asyncio.create_task(self._idle_channel(name, f"127.0.0.1:{port}")))
        started = time.monotonic()
        await self._sample_until(started + plan.seconds)
        self.stop.set()
        for outcome in await asyncio.gather(*tasks, return_exceptions=True):
            if isinstance(outcome, BaseException):  # a client that crashed: an error of the run
                self.tally.error(f"client crashed: {type(outcome).__name__} {outcome}")
        books = await self._settled_books()
        found = figures(plan, self.sampler.samples, self.tally, self.watchers, books, self.channel_states)
        return {**found, "metrics_scrape_failures": self.sampler.scrape_failures}

    async def _sample_until(self, end: float) -> None:
        # A new connection for every scrape: prometheus-client's server may close an idle one.
        async with httpx.AsyncClient(timeout=10, limits=httpx.Limits(max_keepalive_connections=0)) as http:
            while time.monotonic() < end:
                next_at = time.monotonic() + self.plan.sample_s
                await self.sampler.sample(http)
                await asyncio.sleep(max(0.0, min(next_at, end) - time.monotonic()))
            await self.sampler.sample(http)

    async def _idle_channel(self, name: str, target: str) -> None:
        """A channel that makes one call, idles for the whole run and calls again: it must never
        fail (keepalive pings every 30 s that the servers accept, no GOAWAY "too_many_pings").
        It does reconnect now and then: the servers bound connection age (common/grpc_client.py)."""
        channel = open_channel(target)
        health = health_pb2_grpc.HealthStub(channel)
        await health.Check(health_pb2.HealthCheckRequest(), timeout=5)
        state = channel.get_state()
        states = self.channel_states[name] = [state.name]
        while not self.stop.is_set():
            change = asyncio.create_task(channel.wait_for_state_change(state))
            stopped = asyncio.create_task(self.stop.wait())
            await asyncio.wait({change, stopped}, return_when=asyncio.FIRST_COMPLETED)
            stopped.cancel()
            if change.done():
                state = channel.get_state()
                states.append(state.name)
            else:
                change.cancel()
        try:
            await health.Check(health_pb2.HealthCheckRequest(), timeout=5)
        except grpc.aio.AioRpcError as exc:
            self.tally.error(f"idle channel to {name}: {exc.code().name}")
        await channel.close(None)

    async def _settled_books(self) -> Audit:
        """The audit once nothing is left pending (or SETTLE_S passed)."""
        deadline = time.monotonic() + SETTLE_S
        while True:
            ledger = await read_postgres_ledger(self.cluster.order_database_url, self.cluster.payment_database_url)
            if ledger.settled or time.monotonic() > deadline:
                return audit(ledger, self.tally.told, exempt=self.tally.changed)
            await asyncio.sleep(0.5)


def _database(url: str) -> str:
    return url.rsplit("/", 1)[1].split("?")[0]


def _metrics_urls(cluster: Cluster) -> dict[str, str]:
    """Where each process serves Prometheus text: a gateway at /metrics, a service on its port."""
    gateways = iter(cluster.urls)
    urls = {}
    for name, service in cluster.services.items():
        if name.startswith("gateway"):
            urls[name] = f"{next(gateways)}/metrics"
        else:
            urls[name] = f"http://127.0.0.1:{service.env[_variable(name, 'METRICS_PORT')]}/metrics"
    return urls


def _variable(name: str, suffix: str) -> str:
    """`order_service.1`, `METRICS_PORT` → `ORDER_METRICS_PORT`."""
    return f"{name.split('_')[0].upper()}_{suffix}"


def soak(plan: Plan, workdir: Path) -> dict[str, Any]:
    """Start PostgreSQL and the cluster in `workdir`, run, stop everything; the figures."""
    with postgres.server() as server:
        cluster = Cluster(
            workdir,
            order_database_url=postgres.create_database(server.url, "soak_orders"),
            payment_database_url=postgres.create_database(server.url, "soak_payments"),
        )
        try:
            cluster.start()
            return asyncio.run(_run(cluster, server, plan))
        finally:
            cluster.stop()


async def _run(cluster: Cluster, server: postgres.Server, plan: Plan) -> dict[str, Any]:
    return await Soak(cluster, server, plan).run()  # the event loop of the run (Soak's Event is its)
