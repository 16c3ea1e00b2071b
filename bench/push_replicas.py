"""Benchmark 3c, push across replicas (docs/push-channels.md#across-replicas): how long until a
watcher sees a change committed through order replica A, when it watches on A itself and when it
watches on replica B (which hears of it only through PostgreSQL's NOTIFY, or its safety-net re-read
of the log).

On the PostgreSQL set-up of bench/pg.py: 2 order replicas, each with a gateway pinned to it
(its ORDER_SERVICE_TARGET names only that replica), so that an SSE stream's WatchOrder is known
to run on A or on B. Each change: an order paid with `pm_wallet_qr` waits in
`requires_action`; four watchers follow it — gRPC WatchOrder on A and on B, SSE through the
gateway of A and of B — and `ConfirmPayment` is called on A straight over gRPC. The delay runs
from just before that call until the watcher has the new version. A and B swap roles from one
change to the next, so that neither replica is always the one that commits.
"""

from __future__ import annotations

import asyncio
import logging
import statistics
import time
from typing import Any

import aiohttp
import grpc

from bench.config import Plan
from bench.pg import REPLICAS, PostgresSetup
from bench.push import ORDER
from bench.push_clients import PushError, Watcher, new_session, sse
from bench.stats import Delays
from common.caller import ACCOUNT_KEY
from shop.order.v1 import order_pb2, order_pb2_grpc
from tests.harness import ACCOUNT

log = logging.getLogger(__name__)

_READY_S = 20.0
_SEEN_S = 10.0


def _create_request() -> order_pb2.CreateOrderRequest:
    """The push benchmark's order (pm_wallet_qr: it waits for its confirmation), as protobuf."""
    body: dict[str, Any] = dict(ORDER)
    items = [order_pb2.LineItem(**item) for item in body.pop("items")]
    return order_pb2.CreateOrderRequest(items=items, **body)


async def _follow_grpc(stub: order_pb2_grpc.OrderServiceAsyncStub, order_id: str, watcher: Watcher) -> None:
    """WatchOrder from the current version; ready at the first event."""
    watcher.requests += 1
    async for event in stub.WatchOrder(order_pb2.WatchOrderRequest(order_id=order_id)):
        arrived = time.perf_counter()
        if watcher.saw(event.version, arrived):
            return
        watcher.ready.set()
    raise PushError("grpc: the stream ended before the change")


async def _until_ready(watchers: list[Watcher], tasks: list[asyncio.Task[None]]) -> None:
    for watcher, task in zip(watchers, tasks, strict=True):
        waiting = asyncio.create_task(watcher.ready.wait())
        done, _ = await asyncio.wait([waiting, task], timeout=_READY_S, return_when=asyncio.FIRST_COMPLETED)
        waiting.cancel()
        if task in done:
            task.result()  # raises what went wrong; a stream that ended before the change is one too
        if not done:
            raise PushError(f"a watcher was not ready within {_READY_S} s")


async def _trial(
    stubs: list[order_pb2_grpc.OrderServiceAsyncStub], session: aiohttp.ClientSession, urls: list[str], commit: int
) -> tuple[dict[tuple[str, str], float | None], float]:
    """One change committed through replica `commit`: each (channel, same|cross) watcher's delay
    in seconds (None: not seen), and how long the confirm call itself took."""
    # For the benchmark keys' account, so that the SSE watchers (with its key) may see the order.
    order = await stubs[commit].CreateOrder(_create_request(), timeout=10, metadata=((ACCOUNT_KEY, ACCOUNT),))
    if order.status != order_pb2.ORDER_STATUS_REQUIRES_ACTION:
        raise PushError(f"the order is not waiting for its payment: {order.status}")
    watchers: dict[tuple[str, str], Watcher] = {}
    tasks = []
    for replica in range(REPLICAS):
        where = "same" if replica == commit else "cross"
        for channel in ("grpc", "sse"):
            watcher = watchers[(channel, where)] = Watcher(order.version)
            follow = (
                _follow_grpc(stubs[replica], order.id, watcher)
                if channel == "grpc"
                else sse(session, urls[replica], order.id, watcher)
            )
            tasks.append(asyncio.create_task(follow))
    try:
        await _until_ready(list(watchers.values()), tasks)
        await asyncio.sleep(0.05)
        started = time.perf_counter()
        await stubs[commit].ConfirmPayment(order_pb2.ConfirmPaymentRequest(payment_id=order.payment.id), timeout=10)
        confirmed = time.perf_counter() - started
        await asyncio.wait(tasks, timeout=_SEEN_S)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    delays = {key: (w.seen_at - started if w.seen_at is not None else None) for key, w in watchers.items()}
    return delays, confirmed


async def _measure(plan: Plan, targets: list[str], urls: list[str]) -> list[dict[str, Any]]:
    connections = [grpc.aio.insecure_channel(target) for target in targets]
    pooled: dict[tuple[str, str], list[float]] = {}
    missed: dict[tuple[str, str], int] = {}
    confirms: list[float] = []
    try:
        stubs = [order_pb2_grpc.OrderServiceStub(connection) for connection in connections]
        async with new_session() as session:
            for index in range(plan.replica_trials):
                delays, confirmed = await _trial(stubs, session, urls, commit=index % REPLICAS)
                confirms.append(confirmed)
                for key, delay in delays.items():
                    if delay is None:
                        missed[key] = missed.get(key, 0) + 1
                    else:
                        pooled.setdefault(key, []).append(delay)
    finally:
        for connection in connections:
            await connection.close(None)
    confirm_p50 = round(statistics.median(confirms) * 1000, 3)
    rows = []
    for channel in ("grpc", "sse"):
        for where in ("same", "cross"):
            key = (channel, where)
            rows.append(
                {"channel": channel, "replica": where}
                | Delays.from_seconds(pooled.get(key, []), missed.get(key, 0)).to_json()
                | {"confirm_p50_ms": confirm_p50}
            )
    return rows


def run(plan: Plan, setup: PostgresSetup) -> dict[str, Any]:
    targets = setup.cluster.order_targets
    if len(targets) != REPLICAS or len(setup.pinned) != REPLICAS:
        raise RuntimeError(f"needs {REPLICAS} order replicas, each with a gateway of its own")
    return {
        "order_replicas": REPLICAS,
        "trials": plan.replica_trials,
        "change": "OrderService.ConfirmPayment on the committing replica (gRPC); A and B alternate",
        "delay": asyncio.run(_measure(plan, targets, setup.pinned)),
    }
