"""The soak's watchers, on all four channels: each makes a QR-payment order, follows it from
version 0 while it confirms it and refunds it in three steps (to `refunded`, its final version),
then starts over with a new order. Every so often a watcher hangs up in the middle and
reconnects from the last version it saw (`Last-Event-ID`, `after_version`, `If-None-Match`), as
a browser on a bad network would. SSE, WebSocket and gRPC must deliver every version once and in
order; long polling answers with the newest version, so it must only never go backwards and reach
the end. A version missing is `lost`."""

from __future__ import annotations

import asyncio
import itertools
import json
import random
from collections.abc import AsyncIterator, Callable
from typing import Any

import grpc
import httpx
import websockets

from bench.soak.shoppers import Tally, confirm, create, refund
from shop.order.v1 import order_pb2, order_pb2_grpc
from tests.sse import sse_json

FINAL = "refunded"
# How long a watcher stays connected before it hangs up and resumes (at random within).
RECONNECT_S = (0.3, 3.0)
ORDER_TIMEOUT_S = 30.0


class Watcher:
    def __init__(self, tally: Tally, channel: str, url: str, headers: dict[str, str], order_target: str) -> None:
        self.tally = tally
        self.channel = channel
        self.url = url
        self.headers = headers
        self.order_target = order_target
        self.rng = random.Random(channel + url)
        self.cycles = 0
        self.reconnects = 0
        self.lost = 0
        self.versions = 0

    async def run(self, stop: asyncio.Event) -> None:
        timeout = httpx.Timeout(30, read=None)
        async with (
            httpx.AsyncClient(base_url=self.url, headers=self.headers, timeout=timeout) as http,
            grpc.aio.insecure_channel(self.order_target) as channel,
        ):
            self._http, self._stub = http, order_pb2_grpc.OrderServiceStub(channel)
            while not stop.is_set():
                await self.one_order()

    async def one_order(self) -> None:
        order = await create(self.tally, self._http, f"cus_soak_{self.channel}", "pm_wallet_qr", 1000)
        if order is None:
            await asyncio.sleep(1)
            return
        self.tally.changed.add(order["id"])
        seen: list[int] = []
        follow = asyncio.create_task(self._follow(order["id"], seen))
        final = None
        try:
            final = await self._change(order)
            await asyncio.wait_for(follow, ORDER_TIMEOUT_S)
        except (TimeoutError, httpx.HTTPError, grpc.aio.AioRpcError, websockets.WebSocketException, OSError) as exc:
            self.tally.error(f"{self.channel} watcher: {type(exc).__name__} {str(exc)[:120]}")
        finally:
            follow.cancel()
        if final is not None:
            self._check(seen, final)
        self.cycles += 1

    async def _change(self, order: dict[str, Any]) -> int | None:
        """Confirm, then refund in three steps, a moment apart (so that hang-ups fall between);
        the final version (None: a step failed, which is an error of its own)."""
        await asyncio.sleep(0.1)
        await confirm(self.tally, self._http, order["payment"]["id"])
        last = None
        for body in ({"amount": 100}, {"amount": 100}, {}):
            await asyncio.sleep(self.rng.uniform(0.05, 0.4))
            last = await refund(self.tally, self._http, order["id"], body)
        return None if last is None or last["status"] != FINAL else int(last["version"])

    def _check(self, seen: list[int], final: int) -> None:
        self.versions += len(seen)
        if self.channel == "long_poll":
            ascending = all(b > a for a, b in itertools.pairwise(seen))
            if not ascending or not seen or seen[-1] != final:
                self.lost += 1
                self.tally.error(f"long_poll watcher saw {seen}")
        elif seen != list(range(1, final + 1)):
            self.lost += len(set(range(1, final + 1)) - set(seen)) or 1
            self.tally.error(f"{self.channel} watcher saw {seen}")

    async def _follow(self, order_id: str, seen: list[int]) -> None:
        """Until the final version; hangs up after a random while and resumes each time."""
        reader: Callable[[str, int], AsyncIterator[tuple[int, str]]] = getattr(self, f"_{self.channel}")
        while True:
            try:
                async with asyncio.timeout(self.rng.uniform(*RECONNECT_S)):
                    async for version, status in reader(order_id, seen[-1] if seen else 0):
                        seen.append(version)
                        if status == FINAL:
                            return
            except TimeoutError:
                self.reconnects += 1

    async def _sse(self, order_id: str, after: int) -> AsyncIterator[tuple[int, str]]:
        headers = {"Last-Event-ID": str(after)}
        async with self._http.stream("GET", f"/v1/orders/{order_id}/events", headers=headers) as reply:
            async for event in sse_json(reply):
                yield int(event["version"]), str(event["order"]["status"])

    async def _websocket(self, order_id: str, after: int) -> AsyncIterator[tuple[int, str]]:
        url = f"ws://{self.url.removeprefix('http://')}/v1/orders/{order_id}/ws?after_version={after}"
        async with websockets.connect(url, additional_headers=self.headers) as socket:
            async for message in socket:
                event = json.loads(message)
                yield int(event["version"]), str(event["order"]["status"])

    async def _long_poll(self, order_id: str, after: int) -> AsyncIterator[tuple[int, str]]:
        headers = {"Prefer": "wait=20"}
        if after:
            headers["If-None-Match"] = f'"{after}"'
        reply = await self._http.get(f"/v1/orders/{order_id}", headers=headers)
        if reply.status_code == 200:
            yield int(reply.json()["version"]), str(reply.json()["status"])
        elif reply.status_code != 304:
            self.tally.error(f"long_poll watcher: {reply.status_code} {reply.text[:200]}")

    async def _grpc(self, order_id: str, after: int) -> AsyncIterator[tuple[int, str]]:
        request = order_pb2.WatchOrderRequest(order_id=order_id, after_version=after)
        async for event in self._stub.WatchOrder(request):
            status = order_pb2.OrderStatus.Name(event.order.status).removeprefix("ORDER_STATUS_").lower()
            yield event.version, status

    def figures(self) -> dict[str, int]:
        return {"orders": self.cycles, "versions": self.versions, "reconnects": self.reconnects, "lost": self.lost}
