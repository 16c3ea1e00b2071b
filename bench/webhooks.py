"""Benchmark 4, webhooks (docs/webhooks.md): events delivered per second, and the delay from a
change to the receiver's 2xx, with one endpoint and with 100 endpoints of which one is dead.

A stack of its own on SQLite (webhooks allowed to loopback) and a receiver in another process
(bench/webhook_receiver.py) that answers 204 at once. Each scenario registers its endpoints and
places orders (`pm_card_visa`: two events each, `pending_payment` and `paid`) twice:

- `burst`: `webhook_orders` orders from 8 concurrent clients, as fast as they are answered, until
  every live endpoint has every event: the throughput, from the first order placed to the last
  arrival, in deliveries (an event to one endpoint) and in events (delivered to every live
  endpoint). Its delays are mostly the queue of deliveries that the burst builds up;
- `paced`: PACED_ORDERS orders one after the other, each once the previous one's events have all
  arrived: the delay of a change when nothing else is waiting.

The dead endpoint is a port nobody listens on: each attempt fails at once and is retried later
(5 s, then 300 s), never holding up the others. Delays run from the event's `created_at` (when
the order service recorded the version) to its arrival at the receiver.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from pathlib import Path
from typing import Any

import httpx

from bench import auth
from bench.config import Plan
from bench.procs import Server, stop_together
from bench.stats import percentile
from tests.harness import Stack, free_port
from tests.integration.helpers import order_body

log = logging.getLogger(__name__)

CLIENTS = 8
PACED_ORDERS = 20
EVENTS_PER_ORDER = 2
ENV = {"WEBHOOK_ALLOW_PRIVATE_NETWORKS": "true", "WEBHOOK_RETRY_SCHEDULE_S": "5,300"}
_WAIT_S = 300.0


def run(plan: Plan, workdir: Path) -> dict[str, Any]:
    stack = Stack(workdir / "webhooks", env=ENV, keys=auth.KEYS)
    port = free_port()
    receiver = Server("bench.webhook_receiver", [str(port)], workdir / "webhook_receiver.log")
    try:
        stack.start()
        receiver.wait_http(f"http://127.0.0.1:{port}/healthz")
        paced = min(PACED_ORDERS, plan.webhook_orders[1])
        scenarios = [(1, 0, plan.webhook_orders[0]), (100, 1, plan.webhook_orders[1])]
        rows = [
            row
            for n, (endpoints, dead, orders) in enumerate(scenarios)
            for row in asyncio.run(
                _scenario(stack, f"http://127.0.0.1:{port}", endpoints, dead, orders, paced, f"s{n}")
            )
        ]
    finally:
        receiver.stop()
        stop_together([s.proc for s in stack.services.values() if s.proc is not None])
    return {"clients": CLIENTS, "events_per_order": EVENTS_PER_ORDER, "results": rows}


async def _scenario(
    stack: Stack, receiver: str, endpoints: int, dead: int, orders: int, paced: int, name: str
) -> list[dict[str, Any]]:
    live = endpoints - dead
    async with httpx.AsyncClient(base_url=stack.url, headers=auth.headers(), timeout=30) as client:
        urls = [f"{receiver}/{name}/{n}" for n in range(live)]
        urls += [f"http://127.0.0.1:{free_port()}/dead"] * dead  # claimed, and nothing listens there
        made = [await _endpoint(client, url) for url in urls]
        before = len(await _arrivals(receiver, 0))
        started = time.time()
        await _place(client, orders)
        burst = await _until(receiver, before, orders * EVENTS_PER_ORDER * live)
        before += len(burst)
        paced_started, paced_arrivals = time.time(), []
        for _ in range(paced):
            await _order(client)
            found = await _until(receiver, before, EVENTS_PER_ORDER * live, poll_s=0.01)
            paced_arrivals += found
            before += len(found)
        for endpoint_id in made:
            await client.delete(f"/v1/webhook_endpoints/{endpoint_id}")
    return [
        _row("burst", endpoints, dead, orders, burst, started),
        _row("paced", endpoints, dead, paced, paced_arrivals, paced_started),
    ]


def _row(
    mode: str, endpoints: int, dead: int, orders: int, arrivals: list[tuple[str, str, float, float]], started: float
) -> dict[str, Any]:
    delays_ms = [(came - created) * 1000 for _path, _id, created, came in arrivals]
    span = max(came for *_, came in arrivals) - started
    row = {
        "mode": mode,
        "endpoints": endpoints,
        "dead": dead,
        "orders": orders,
        "deliveries": len(arrivals),
        "duplicates": len(arrivals) - len({(path, webhook_id) for path, webhook_id, *_ in arrivals}),
        "deliveries_per_s": round(len(arrivals) / span, 1),
        "events_per_s": round(orders * EVENTS_PER_ORDER / span, 1),
        "p50_ms": round(percentile(delays_ms, 50), 1),
        "p99_ms": round(percentile(delays_ms, 99), 1),
        "max_ms": round(max(delays_ms), 1),
    }
    log.info("webhooks: %s", row)
    return row


async def _endpoint(client: httpx.AsyncClient, url: str) -> str:
    reply = await client.post("/v1/webhook_endpoints", json={"url": url})
    reply.raise_for_status()
    return str(reply.json()["id"])


async def _place(client: httpx.AsyncClient, orders: int) -> None:
    queue: asyncio.Queue[int] = asyncio.Queue()
    for n in range(orders):
        queue.put_nowait(n)

    async def one_client() -> None:
        while not queue.empty():
            queue.get_nowait()
            await _order(client)

    await asyncio.gather(*(one_client() for _ in range(CLIENTS)))


async def _order(client: httpx.AsyncClient) -> None:
    """One order, with an Idempotency-Key, asked again after a 503 or 504 (a loaded machine)."""
    body, key = order_body(), f"bench-webhooks-{uuid.uuid4()}"
    for _ in range(10):
        reply = await client.post("/v1/orders", json=body, headers={"Idempotency-Key": key})
        if reply.status_code not in (409, 503, 504):
            reply.raise_for_status()
            return
        await asyncio.sleep(0.5)
    reply.raise_for_status()


async def _arrivals(receiver: str, after: int) -> list[tuple[str, str, float, float]]:
    async with httpx.AsyncClient(timeout=30) as http:
        reply = await http.get(f"{receiver}/arrivals", params={"after": after})
    return [(str(p), str(i), float(c), float(t)) for p, i, c, t in reply.json()]


async def _until(receiver: str, before: int, expected: int, poll_s: float = 0.1) -> list[tuple[str, str, float, float]]:
    """The arrivals after the first `before`, once there are `expected` of them."""
    async with asyncio.timeout(_WAIT_S):
        while True:
            found = await _arrivals(receiver, before)
            if len(found) >= expected:
                return found
            await asyncio.sleep(poll_s)
