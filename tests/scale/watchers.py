"""Followers of one order on every channel, each recording which versions arrived and when: a
gRPC WatchOrder on one order-service replica, and SSE, WebSocket and long polling on one gateway.
Each follows from a version it names (`after`: every version after it), never from whatever is
current when it connects, so what it sees does not depend on when it got there."""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass, field

import grpc
import httpx
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from shop.order.v1 import order_pb2, order_pb2_grpc
from tests.integration.push_clients import SseReader

FINAL = ("payment_failed", "canceled", "refunded")


@dataclass
class Follower:
    """`seen`: (version, arrival time) in the order they came."""

    name: str
    seen: list[tuple[int, float]] = field(default_factory=list)
    got: dict[int, asyncio.Event] = field(default_factory=dict)

    def record(self, version: int) -> None:
        self.seen.append((version, time.monotonic()))
        self.got.setdefault(version, asyncio.Event()).set()

    async def wait_for(self, version: int, timeout: float) -> float:
        """Until `version` has arrived; returns its arrival time."""
        async with asyncio.timeout(timeout):
            await self.got.setdefault(version, asyncio.Event()).wait()
        return next(at for v, at in self.seen if v == version)

    @property
    def versions(self) -> list[int]:
        return [v for v, _ in self.seen]


async def follow_grpc(follower: Follower, target: str, order_id: str, after: int) -> None:
    async with grpc.aio.insecure_channel(target) as channel:
        stub = order_pb2_grpc.OrderServiceStub(channel)
        async for event in stub.WatchOrder(order_pb2.WatchOrderRequest(order_id=order_id, after_version=after)):
            follower.record(event.version)


# The three HTTP channels follow the order as a browser does: with its client secret, no key.


async def follow_sse(follower: Follower, url: str, order_id: str, client_secret: str, after: int) -> None:
    async with (
        httpx.AsyncClient(base_url=url, timeout=None, params={"client_secret": client_secret}) as client,
        client.stream("GET", f"/v1/orders/{order_id}/events", headers={"Last-Event-ID": str(after)}) as response,
    ):
        assert response.status_code == 200
        reader = SseReader(response)
        while (event := await reader.event(timeout=120)) is not None:
            follower.record(int(event.message["version"]))
            if event.message["order"]["status"] in FINAL:
                return


async def follow_websocket(follower: Follower, url: str, order_id: str, client_secret: str, after: int) -> None:
    query = f"client_secret={client_secret}&after_version={after}"
    ws_url = f"{url.replace('http://', 'ws://')}/v1/orders/{order_id}/ws?{query}"
    async with connect(ws_url) as socket:
        try:
            while True:
                message = json.loads(await socket.recv())
                follower.record(int(message["version"]))
        except ConnectionClosed:
            return


async def follow_long_poll(follower: Follower, url: str, order_id: str, client_secret: str, after: int) -> None:
    """Long polls from `after` on: each answer is the order as it is then (a poll may skip a
    version the others see; the test's changes wait until every follower has each one)."""
    async with httpx.AsyncClient(base_url=url, timeout=70, params={"client_secret": client_secret}) as client:
        version, status = after, ""
        while status not in FINAL:
            reply = await client.get(
                f"/v1/orders/{order_id}", headers={"If-None-Match": f'"{version}"', "Prefer": "wait=60"}
            )
            assert reply.status_code in (200, 304), reply.text
            if reply.status_code == 200:
                order = reply.json()
                version, status = order["version"], order["status"]
                follower.record(version)
