"""One fault run: a started stack — or a cluster of replicas on PostgreSQL — under the load of
`Load`, one watched order changing all the time with its watchers (item 5), and, at the end,
the books audited from the databases.

    async with Scenario(stack, "kill payment_service") as run:
        await run.warm_up()
        ... break something, bring it back ...
    # on exit: the load is drained, the watched order refunded in full, the watchers finished,
    # the reconciler given time to finish pending orders, the webhooks time to deliver every
    # event, the books audited, figures recorded, and every broken rule raised as one AssertionError.

The stack must have been started with the webhook settings of tests/fault/webhooks.py
(`with_webhooks`): a webhook endpoint of the load's account is registered before the first order.

With a `Cluster` the load is spread over every gateway, the gRPC watcher is aimed at every order
replica (pick-first: it follows the first, and moves on when that one dies), the SSE watcher
follows the order through the first gateway and the WebSocket watcher through the last, and
the books are read from PostgreSQL.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections import Counter
from dataclasses import dataclass
from types import TracebackType
from typing import Any

from tests.artifacts import record
from tests.fault import service_logs
from tests.fault.deliveries import DeliveryBooks, audit_deliveries
from tests.fault.ledger import Ledger, audit, read_ledger, read_postgres_ledger
from tests.fault.load import Load
from tests.fault.watchers import GrpcWatcher, Refunder, SseWatcher, WebSocketWatcher, gateway_serves_sse
from tests.fault.webhooks import HOOKED_CLIENTS, Webhooks
from tests.harness import Cluster, Stack, bearer, ipv4_target

# The figures; shorter with FAULT_LOAD_S / FAULT_DOWN_S for a quick local run.
LOAD_S = float(os.environ.get("FAULT_LOAD_S", "30"))
# The SIGTERM and slow-payment runs: their fault is over in a second or two, no need for 30 s.
SHORT_LOAD_S = float(os.environ.get("FAULT_SHORT_LOAD_S", str(min(LOAD_S, 12))))
DOWN_S = float(os.environ.get("FAULT_DOWN_S", "5"))
CLIENTS = int(os.environ.get("FAULT_CLIENTS", "32"))
SETTLE_S = 60.0  # how long the reconciler may take to finish what the fault left pending


@dataclass
class _Restart:
    log_offset: int  # where the service's log stood: what it wrote after is past it
    wall: float  # time.time() of the restart, to compare with the log's timestamps
    at: float  # time.monotonic() of it
    ready_at: float | None = None


class Scenario:
    def __init__(self, stack: Stack | Cluster, name: str, *, clients: int = CLIENTS, watch: bool = True) -> None:
        self.stack = stack
        self.name = name
        self.urls = stack.urls if isinstance(stack, Cluster) else [stack.url]
        self.order_target = ipv4_target(stack.order_ports) if isinstance(stack, Cluster) else stack.order_target
        self.load = Load(self.urls, stack.headers, clients=clients)
        # The webhook account (tests/fault/webhooks.py): the watched order, and a load of its own.
        hooked = bearer(stack.keys.other)
        self.hooked = Load(self.urls, hooked, clients=HOOKED_CLIENTS, seed=11)
        self.watch = watch
        self.figures: dict[str, Any] = {}
        self.fault_at: float | None = None
        self.back_at: float | None = None
        self.started = 0.0
        self._stop_refunds = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self.watchers: dict[str, GrpcWatcher | SseWatcher | WebSocketWatcher] = {}
        self.refunder = Refunder(self.urls[0], hooked)
        self.webhooks = Webhooks(self.urls[0], hooked)
        self._restarts: dict[str, _Restart] = {}

    async def __aenter__(self) -> Scenario:
        self.started = time.monotonic()
        try:
            await self._begin()
        except BaseException:
            await self.webhooks.close()
            raise
        return self

    async def _begin(self) -> None:
        await self.webhooks.start()
        if self.watch:
            order_id = await self.refunder.create()
            self.webhooks.exempt.add(order_id)
            self.watchers["grpc"] = GrpcWatcher(self.order_target, order_id)
            if await gateway_serves_sse(self.urls[0]):
                # Every watcher asks for the whole history (after version 0): the order moves on
                # while they connect, and "the current version" would be a different one each run.
                self.watchers["sse"] = SseWatcher(self.urls[0], order_id, self.hooked.headers, after_version=0)
                self.watchers["websocket"] = WebSocketWatcher(self.urls[-1], order_id, self.hooked.headers)
            self._tasks = [asyncio.create_task(w.run()) for w in self.watchers.values()]
            self._tasks.append(asyncio.create_task(self.refunder.run(self._stop_refunds)))
        self.load.start()
        self.hooked.start()

    async def warm_up(self, orders: int = 50) -> None:
        """Until the load has really started (orders created), so the fault hits a busy system."""
        await asyncio.wait_for(self.load.wait_for_orders(orders), timeout=120)

    def mark_fault(self) -> None:
        self.fault_at = time.monotonic()

    def mark_back(self) -> None:
        self.back_at = time.monotonic()

    async def until(self, seconds_since_start: float) -> None:
        """Let the load run until `seconds_since_start` after the scenario began."""
        await asyncio.sleep(max(0.0, self.started + seconds_since_start - time.monotonic()))

    async def restart(self, *names: str) -> None:
        """Start stopped or killed services again and wait until the stack (or, in a cluster,
        each of those replicas) is ready."""
        for name in names:
            service = self.stack.services[name]
            offset = service.log_path.stat().st_size if service.log_path.exists() else 0
            self._restarts[name] = _Restart(offset, time.time(), time.monotonic())
            service.start()
        self.mark_back()
        if isinstance(self.stack, Cluster):
            for name in names:
                await asyncio.to_thread(self.stack.wait_replica, name, 60)
                self._restarts[name].ready_at = time.monotonic()
        else:
            await asyncio.to_thread(self.stack.wait_ready, 60)
            for name in names:
                self._restarts[name].ready_at = time.monotonic()

    async def wait_served(self, *names: str, timeout: float = 30) -> None:
        """Until each restarted service has served a call of the load again, as its log says:
        its callers came back to it by themselves (docs/grpc-api.md#balancing-across-replicas). The
        log of another process is all there is to watch, so it is read every 0.1 s."""
        deadline = time.monotonic() + timeout
        while not all(self.calls_since_restart(name)[0] for name in names):
            if time.monotonic() > deadline:
                return  # reported (and failed) with the figures at the end
            await asyncio.sleep(0.1)

    def calls_since_restart(self, name: str) -> tuple[Counter[str], str | None]:
        """The RPCs (a gateway: the requests) the restarted service `name` served after its
        restart, by method (route), and when it logged the first of them (its log's `ts`)."""
        return service_logs.served_since(self.stack.services[name], self._restarts[name].log_offset)

    def rpc_failures(self) -> dict[str, dict[str, int]]:
        return service_logs.rpc_failures(self.stack.services)

    def log_errors(self) -> dict[str, dict[str, int]]:
        return service_logs.log_errors(self.stack.services)

    def _restart_figures(self, problems: list[str]) -> dict[str, Any]:
        figures: dict[str, Any] = {}
        for name, restart in self._restarts.items():
            served, first = self.calls_since_restart(name)
            figures[f"restart:{name}"] = {
                "ready_after_s": None if restart.ready_at is None else round(restart.ready_at - restart.at, 3),
                "first_call_after_s": None if first is None else round(service_logs.wall(first) - restart.wall, 3),
                "served": dict(sorted(served.items())),
            }
            if isinstance(self.stack, Cluster) and not served:
                # docs/grpc-api.md#balancing-across-replicas: a replica that comes up is used
                # without restarting its callers.
                problems.append(f"{name} served no call after its restart")
        return figures

    async def read_ledger(self) -> Ledger:
        if isinstance(self.stack, Cluster):
            return await read_postgres_ledger(self.stack.order_database_url, self.stack.payment_database_url)
        return await asyncio.to_thread(read_ledger, self.stack.workdir)

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None
    ) -> None:
        if kind is not None:
            await self._abandon()
            return
        await asyncio.gather(self.load.stop(), self.hooked.stop())
        self._stop_refunds.set()
        done, pending = await asyncio.wait(self._tasks, timeout=120) if self._tasks else (set(), set())
        for task in pending:
            task.cancel()
        for task in done:
            task.result()  # a watcher that crashed is a failure of the test, with its traceback
        ledger = await self._settled()
        try:
            delivered = await self.webhooks.settle(ledger.account_events)
        finally:
            await self.webhooks.close()
        self._check(ledger, delivered, stuck_watchers=len(pending))

    async def _abandon(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await asyncio.gather(self.load.stop(), self.hooked.stop(), self.webhooks.close(), return_exceptions=True)

    async def _settled(self) -> Ledger:
        """The books once the reconciler has finished every pending order and every check of an
        answer that may have been lost (or SETTLE_S passed)."""
        deadline = time.monotonic() + SETTLE_S
        settle_started = time.monotonic()
        first: Ledger | None = None
        while True:
            ledger = await self.read_ledger()
            first = first or ledger
            if ledger.settled or time.monotonic() > deadline:
                self.figures["pending_after_load"] = len(first.pending)
                self.figures["in_doubt_after_load"] = len(first.in_doubt)
                self.figures["settle_s"] = round(time.monotonic() - settle_started, 3)
                return ledger
            await asyncio.sleep(0.2)

    def _check(self, ledger: Ledger, delivered: DeliveryBooks, stuck_watchers: int) -> None:
        watched = self.refunder.order.get("id")
        result = audit(ledger, {**self.load.told(), **self.hooked.told()}, exempt=[watched] if watched else [])
        load = self.load.figures(fault_at=self.fault_at, back_at=self.back_at)
        problems = list(result.problems)
        webhook_problems, webhook_figures = audit_deliveries(ledger.account_events, delivered)
        problems += webhook_problems
        for clients in (self.load, self.hooked):
            problems += [f"key {r.key}: {u}" for r in clients.results.values() for u in r.unexpected]
            if twice := clients.figures()["keys_with_two_orders"]:
                problems.append(f"{twice} keys were answered with two different orders")
        figures: dict[str, Any] = {
            **self.figures,
            **{k: v for k, v in load.items()},
            **result.figures(),
            "webhook_orders_created": self.hooked.created,
            **webhook_figures,
            **self.webhooks.figures,
            "duration_s": round(time.monotonic() - self.started, 1),
        }
        if watched:
            figures.update(self._check_watchers(ledger, watched, problems, stuck_watchers))
        figures.update(self._restart_figures(problems))
        figures["service_log_errors"] = self.log_errors()
        figures["service_rpc_failures"] = self.rpc_failures()
        figures["problems"] = len(problems)
        figures["first_problems"] = problems[:20]
        record("fault-report", self.name, figures)
        assert not problems, f"{len(problems)} problems; the first:\n" + "\n".join(problems[:20])

    def _check_watchers(self, ledger: Ledger, order_id: str, problems: list[str], stuck: int) -> dict[str, Any]:
        figures: dict[str, Any] = {"watched_order_versions": ledger.orders[order_id].version,
                                   "watched_refunds": self.refunder.refunds,
                                   "watched_refund_errors": dict(sorted(self.refunder.errors.items()))}  # fmt: skip
        problems += self.refunder.problems
        if stuck:
            problems.append(f"{stuck} watcher(s) or the refunder did not finish")
        log = ledger.events.get(order_id, [])
        for channel, watcher in self.watchers.items():
            figures[f"watcher_{channel}"] = watcher.figures()
            problems += [f"{channel} watcher: {p}" for p in watcher.problems]
            if not watcher.finished:
                problems.append(f"{channel} watcher did not see the final version")
            # Every version from the first it was sent to the last in the log, in order, none twice.
            if watcher.versions and watcher.versions != log[watcher.versions[0] - 1 :]:
                problems.append(f"{channel} watcher saw {len(watcher.versions)} versions from "
                                f"{watcher.versions[0]}, the log has {len(log)}")  # fmt: skip
            if watcher.versions and watcher.versions[0] != 1:
                problems.append(f"{channel} watcher started at version {watcher.versions[0]}, not 1")
        payment_id = ledger.orders[order_id].payment_id
        refunded = ledger.refunded.get(payment_id or "", 0)
        if refunded != 1_000_000:
            problems.append(f"the watched order was refunded {refunded} in total, not 1000000")
        # One refund per answered request (the good client's retries must not refund again).
        if ledger.refund_counts.get(payment_id or "", 0) != self.refunder.refunds + 1:
            problems.append(f"{ledger.refund_counts.get(payment_id or '', 0)} refunds stored for "
                            f"{self.refunder.refunds + 1} refund requests")  # fmt: skip
        return figures
