"""One fault run: a started stack under the load of `Load`, one watched order changing all the
time with its watchers (item 5), and, at the end, the books audited from the databases.

    async with Scenario(stack, "kill payment_service") as run:
        await run.warm_up()
        ... break something, bring it back ...
    # on exit: the load is drained, the watched order refunded in full, the watchers finished,
    # the reconciler given time to finish pending orders, the books audited, figures recorded,
    # and every broken rule raised as one AssertionError.
"""

from __future__ import annotations

import asyncio
import os
import time
from types import TracebackType
from typing import Any

from tests.artifacts import record
from tests.fault.ledger import Ledger, audit, read_ledger
from tests.fault.load import Load
from tests.fault.watchers import GrpcWatcher, Refunder, SseWatcher, WebSocketWatcher, gateway_serves_sse
from tests.harness import Stack

# The figures; shorter with FAULT_LOAD_S / FAULT_DOWN_S for a quick local run.
LOAD_S = float(os.environ.get("FAULT_LOAD_S", "30"))
# The SIGTERM and slow-payment runs: their fault is over in a second or two, no need for 30 s.
SHORT_LOAD_S = float(os.environ.get("FAULT_SHORT_LOAD_S", str(min(LOAD_S, 12))))
DOWN_S = float(os.environ.get("FAULT_DOWN_S", "5"))
CLIENTS = int(os.environ.get("FAULT_CLIENTS", "32"))
SETTLE_S = 60.0  # how long the reconciler may take to finish what the fault left pending


class Scenario:
    def __init__(self, stack: Stack, name: str, *, clients: int = CLIENTS, watch: bool = True) -> None:
        self.stack = stack
        self.name = name
        self.load = Load(stack.url, stack.headers, clients=clients)
        self.watch = watch
        self.figures: dict[str, Any] = {}
        self.fault_at: float | None = None
        self.back_at: float | None = None
        self.started = 0.0
        self._stop_refunds = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self.watchers: dict[str, GrpcWatcher | SseWatcher | WebSocketWatcher] = {}
        self.refunder = Refunder(stack.url, stack.headers)

    async def __aenter__(self) -> Scenario:
        self.started = time.monotonic()
        if self.watch:
            order_id = await self.refunder.create()
            self.watchers["grpc"] = GrpcWatcher(self.stack.order_target, order_id)
            if await gateway_serves_sse(self.stack.url):
                self.watchers["sse"] = SseWatcher(self.stack.url, order_id, self.stack.headers)
                self.watchers["websocket"] = WebSocketWatcher(self.stack.url, order_id, self.stack.headers)
            self._tasks = [asyncio.create_task(w.run()) for w in self.watchers.values()]
            self._tasks.append(asyncio.create_task(self.refunder.run(self._stop_refunds)))
        self.load.start()
        return self

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

    async def restart(self, name: str) -> None:
        """Start a stopped or killed service again and wait until the stack is ready."""
        service = self.stack.services[name]
        service.start()
        self.mark_back()
        await asyncio.to_thread(self.stack.wait_ready, 60)

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None
    ) -> None:
        if kind is not None:
            await self._abandon()
            return
        await self.load.stop()
        self._stop_refunds.set()
        done, pending = await asyncio.wait(self._tasks, timeout=120) if self._tasks else (set(), set())
        for task in pending:
            task.cancel()
        for task in done:
            task.result()  # a watcher that crashed is a failure of the test, with its traceback
        ledger = await self._settled()
        self._check(ledger, stuck_watchers=len(pending))

    async def _abandon(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await asyncio.gather(self.load.stop(), return_exceptions=True)

    async def _settled(self) -> Ledger:
        """The books once the reconciler has finished every pending order (or SETTLE_S passed)."""
        deadline = time.monotonic() + SETTLE_S
        settle_started = time.monotonic()
        while True:
            ledger = await asyncio.to_thread(read_ledger, self.stack.workdir)
            if not ledger.pending or time.monotonic() > deadline:
                self.figures["pending_after_load"] = len(ledger.pending)
                self.figures["settle_s"] = round(time.monotonic() - settle_started, 3)
                return ledger
            await asyncio.sleep(0.2)

    def _check(self, ledger: Ledger, stuck_watchers: int) -> None:
        watched = self.refunder.order.get("id")
        result = audit(ledger, self.load.told(), exempt=[watched] if watched else [])
        load = self.load.figures(fault_at=self.fault_at, back_at=self.back_at)
        problems = list(result.problems)
        problems += [f"key {r.key}: {u}" for r in self.load.results.values() for u in r.unexpected]
        if load["keys_with_two_orders"]:
            problems.append(f"{load['keys_with_two_orders']} keys were answered with two different orders")
        figures: dict[str, Any] = {
            **self.figures,
            **{k: v for k, v in load.items()},
            **result.figures(),
            "duration_s": round(time.monotonic() - self.started, 1),
        }
        if watched:
            figures.update(self._check_watchers(ledger, watched, problems, stuck_watchers))
        figures["problems"] = len(problems)
        figures["first_problems"] = problems[:20]
        record("fault-report", self.name, figures)
        assert not problems, f"{len(problems)} problems; the first:\n" + "\n".join(problems[:20])

    def _check_watchers(self, ledger: Ledger, order_id: str, problems: list[str], stuck: int) -> dict[str, Any]:
        figures: dict[str, Any] = {"watched_order_versions": ledger.orders[order_id].version,
                                   "watched_refunds": self.refunder.refunds}  # fmt: skip
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
            if watcher.versions and watcher.versions[0] > 2:
                problems.append(f"{channel} watcher started at version {watcher.versions[0]}")
        payment_id = ledger.orders[order_id].payment_id
        refunded = ledger.refunded.get(payment_id or "", 0)
        if refunded != 1_000_000:
            problems.append(f"the watched order was refunded {refunded} in total, not 1000000")
        # One refund per answered request (the good client's retries must not refund again).
        if ledger.refund_counts.get(payment_id or "", 0) != self.refunder.refunds + 1:
            problems.append(f"{ledger.refund_counts.get(payment_id or '', 0)} refunds stored for "
                            f"{self.refunder.refunds + 1} refund requests")  # fmt: skip
        return figures
