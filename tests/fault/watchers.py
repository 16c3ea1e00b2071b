"""Item 5 of the fault suite: one order that keeps changing while services are killed, stopped
and slowed, and watchers that follow it through all of it, each reconnecting with the last
version it saw whenever its stream breaks. At the end each must have seen every version of the
order, in order, none twice — the same list as the order's event log in the database.

- `Refunder` changes the order: it is paid, then refunded one minor unit at a time by a good
  client (a fresh Idempotency-Key per refund, retried with the same key on 503/504/409 — after
  the answer's Retry-After when it has one — and on a broken connection), and at the end
  refunded in full, which is final and ends every stream. Every answer that was not the final
  one is counted (`errors`): what this client saw of the fault.
- `GrpcWatcher` follows it with `OrderService.WatchOrder(order_id, after_version)`.
- `SseWatcher` follows it through the gateway's Server-Sent Events with `Last-Event-ID`, and
  `WebSocketWatcher` through its WebSocket with `?after_version=`
  (docs/push-channels.md#resume-points).
"""

from __future__ import annotations

import asyncio
import json
import random
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import grpc
import httpx
import websockets

from shop.order.v1 import order_pb2, order_pb2_grpc
from tests.fault.load import MAX_BACKOFF_S, RETRIED, pause_s
from tests.sse import sse_json

FINAL = frozenset({"payment_failed", "canceled", "refunded"})


async def post_until_done(
    http: httpx.AsyncClient,
    path: str,
    body: dict[str, Any],
    give_up_s: float = 120,
    errors: Counter[str] | None = None,
) -> httpx.Response:
    """POST as a good client: one key, retried until a definite answer. Each answer that was
    not it (its status, or the transport error's name) is counted in `errors`."""
    key = uuid.uuid4().hex
    deadline = time.monotonic() + give_up_s
    backoff = 0.05
    rng = random.Random(key)
    while True:
        reply: httpx.Response | None = None
        try:
            reply = await http.post(path, json=body, headers={"Idempotency-Key": key})
            if reply.status_code not in RETRIED:
                return reply
            seen = str(reply.status_code)
        except httpx.TransportError as exc:
            seen = type(exc).__name__
        if errors is not None:
            errors[seen] += 1
        if time.monotonic() > deadline:
            raise TimeoutError(f"POST {path} got no answer in {give_up_s} s")
        await asyncio.sleep(pause_s(reply, backoff, rng))
        backoff = min(backoff * 2, MAX_BACKOFF_S)


@dataclass
class Refunder:
    url: str
    headers: dict[str, str]
    refunds: int = 0
    order: dict[str, Any] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)

    async def create(self) -> str:
        async with httpx.AsyncClient(base_url=self.url, headers=self.headers, timeout=30) as http:
            body = {
                "customer_id": "cus_watched",
                "currency": "EUR",
                "items": [{"sku": "WATCHED", "quantity": 1, "unit_price": 1_000_000}],
                "payment_method": "pm_card_visa",
            }
            reply = await post_until_done(http, "/v1/orders", body, errors=self.errors)
            assert reply.status_code == 201, reply.text
            self.order = reply.json()
        return str(self.order["id"])

    async def run(self, stop: asyncio.Event) -> None:
        """Refund 1 at a time until `stop`, then the rest (the order becomes `refunded`)."""
        path = f"/v1/orders/{self.order['id']}/refund"
        async with httpx.AsyncClient(base_url=self.url, headers=self.headers, timeout=30) as http:
            while not stop.is_set():
                reply = await post_until_done(http, path, {"amount": 1}, errors=self.errors)
                if reply.status_code != 200:
                    self.problems.append(f"refund: {reply.status_code} {reply.text[:300]}")
                    return
                self.refunds += 1
                await asyncio.sleep(0.01)
            reply = await post_until_done(http, path, {}, errors=self.errors)
            if reply.status_code != 200 or reply.json()["status"] != "refunded":
                self.problems.append(f"final refund: {reply.status_code} {reply.text[:300]}")
            else:
                self.order = reply.json()


@dataclass
class _Seen:
    versions: list[int] = field(default_factory=list)
    statuses: list[str] = field(default_factory=list)
    connections: int = 0
    problems: list[str] = field(default_factory=list)
    finished: bool = False

    def add(self, version: int, status: str) -> None:
        if self.versions and version != self.versions[-1] + 1:
            self.problems.append(f"after version {self.versions[-1]} came {version}")
        self.versions.append(version)
        self.statuses.append(status)

    def figures(self) -> dict[str, Any]:
        return {
            "versions_seen": len(self.versions),
            "first_version": self.versions[0] if self.versions else None,
            "last_version": self.versions[-1] if self.versions else None,
            "reconnects": max(self.connections - 1, 0),
            "finished": self.finished,
            "problems": self.problems[:10],
        }


_STATUS_NAMES = {v: k.removeprefix("ORDER_STATUS_").lower() for k, v in order_pb2.OrderStatus.items()}


class GrpcWatcher(_Seen):
    def __init__(self, target: str, order_id: str) -> None:
        super().__init__()
        self.target = target
        self.order_id = order_id

    async def run(self) -> None:
        backoff = 0.05
        async with grpc.aio.insecure_channel(self.target) as channel:
            stub = order_pb2_grpc.OrderServiceStub(channel)
            while not self.finished:
                after = self.versions[-1] if self.versions else 0
                self.connections += 1
                try:
                    request = order_pb2.WatchOrderRequest(order_id=self.order_id, after_version=after)
                    async for event in stub.WatchOrder(request):
                        self.add(event.version, _STATUS_NAMES[event.order.status])
                        backoff = 0.05
                        if self.statuses[-1] in FINAL:
                            self.finished = True
                except grpc.aio.AioRpcError as exc:
                    if exc.code() not in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.CANCELLED):
                        self.problems.append(f"WatchOrder: {exc.code().name} {exc.details()}")
                        return
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 1.0)


class SseWatcher(_Seen):
    """An EventSource that reconnects with `Last-Event-ID` whenever the stream breaks."""

    def __init__(self, url: str, order_id: str, headers: dict[str, str], after_version: int = 0) -> None:
        """`after_version`: the first connection resumes after it, so that the watcher sees the
        versions made before it connected too (by default the whole history, as the other
        watchers); never "the current version", which may already be past the first ones."""
        super().__init__()
        self.url = url
        self.headers = headers
        self.order_id = order_id
        self.after_version = after_version

    async def run(self) -> None:
        backoff = 0.05
        timeout = httpx.Timeout(10, read=None)
        async with httpx.AsyncClient(base_url=self.url, headers=self.headers, timeout=timeout) as http:
            while not self.finished:
                headers = {"Accept": "text/event-stream"}
                headers["Last-Event-ID"] = str(self.versions[-1] if self.versions else self.after_version)
                self.connections += 1
                try:
                    async with http.stream("GET", f"/v1/orders/{self.order_id}/events", headers=headers) as reply:
                        if reply.status_code == 204:
                            self.finished = True
                            return
                        if reply.status_code == 200:
                            await self._read(reply)
                except httpx.TransportError:
                    pass
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 1.0)

    async def _read(self, reply: httpx.Response) -> None:
        async for event in sse_json(reply):
            self.add(int(event["version"]), str(event["order"]["status"]))
            if self.statuses[-1] in FINAL:
                self.finished = True


class WebSocketWatcher(_Seen):
    """A WebSocket client that reconnects with `?after_version=` whenever the socket breaks."""

    def __init__(self, url: str, order_id: str, headers: dict[str, str]) -> None:
        super().__init__()
        self.url = "ws://" + url.removeprefix("http://")
        self.headers = headers
        self.order_id = order_id

    async def run(self) -> None:
        backoff = 0.05
        while not self.finished:
            after = self.versions[-1] if self.versions else 0
            self.connections += 1
            try:
                url = f"{self.url}/v1/orders/{self.order_id}/ws?after_version={after}"
                async with websockets.connect(url, additional_headers=self.headers) as ws:
                    async for message in ws:
                        event = json.loads(message)
                        self.add(int(event["version"]), str(event["order"]["status"]))
                        backoff = 0.05
                        if self.statuses[-1] in FINAL:
                            self.finished = True
            except (OSError, websockets.WebSocketException):
                pass
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, 1.0)


async def gateway_serves_sse(url: str) -> bool:
    """Whether the gateway documents the SSE route (the push channels may not exist yet)."""
    async with httpx.AsyncClient(base_url=url, timeout=10) as http:
        paths = (await http.get("/openapi.json")).json().get("paths", {})
    return "/v1/orders/{order_id}/events" in paths
