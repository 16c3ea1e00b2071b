"""Helpers of the events-feed and webhook suites: reading the feed to its end, following its SSE
stream, and waiting for what the delivery log says (polled: it is what a user would look at)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
import orjson

from tests.webhook_receiver import Arrival, Receiver

Json = dict[str, Any]


async def feed_end(client: httpx.AsyncClient) -> str:
    """The cursor after the account's newest event."""
    _, cursor = await read_feed(client, None)
    return cursor


async def read_feed(client: httpx.AsyncClient, after: str | None, page_size: int = 100) -> tuple[list[Json], str]:
    """Every event after `after`, following `next_cursor` until a page is empty."""
    found: list[Json] = []
    while True:
        params: dict[str, Any] = {"page_size": page_size}
        if after is not None:
            params["after"] = after
        reply = await client.get("/v1/events", params=params)
        assert reply.status_code == 200, reply.text
        page = reply.json()
        found.extend(page["events"])
        after = page["next_cursor"]
        if not page["events"]:
            return found, after


async def deliveries(client: httpx.AsyncClient, endpoint_id: str, order_id: str | None = None) -> list[Json]:
    params: dict[str, str | int] = {"page_size": 100, **({"order_id": order_id} if order_id else {})}
    reply = await client.get(f"/v1/webhook_endpoints/{endpoint_id}/deliveries", params=params)
    assert reply.status_code == 200, reply.text
    found: list[Json] = reply.json()["deliveries"]
    return found


async def wait_deliveries(
    client: httpx.AsyncClient,
    endpoint_id: str,
    order_id: str,
    done: Callable[[list[Json]], bool],
    timeout: float = 30,
) -> list[Json]:
    """The order's deliveries to the endpoint, once `done` says they are as awaited (the log is
    polled: it is what a user would look at)."""
    async with asyncio.timeout(timeout):
        while True:
            found = await deliveries(client, endpoint_id, order_id)
            if done(found):
                return found
            await asyncio.sleep(0.05)


def all_final(count: int) -> Callable[[list[Json]], bool]:
    return lambda found: len(found) == count and all(d["status"] != "pending" for d in found)


@asynccontextmanager
async def endpoint(
    client: httpx.AsyncClient, receiver: Receiver, path: str = "/hook", **fields: Any
) -> AsyncIterator[Json]:
    """A webhook endpoint of the client's account aimed at `receiver`; deleted afterwards."""
    reply = await client.post("/v1/webhook_endpoints", json={"url": receiver.url(path), **fields})
    assert reply.status_code == 201, reply.text
    created: Json = reply.json()
    try:
        yield created
    finally:
        await client.delete(f"/v1/webhook_endpoints/{created['id']}")


def of_order(arrivals: list[Arrival], order_id: str) -> list[Arrival]:
    """The arrivals that carry an event of `order_id`."""
    return [a for a in arrivals if orjson.loads(a.body)["data"]["order"]["id"] == order_id]


@dataclass
class SseFollower:
    """Reads an SSE response: its events, comments (keep-alives), in the order they came."""

    events: list[tuple[str, str, Json]] = field(default_factory=list)
    comments: int = 0
    started: asyncio.Event = field(default_factory=asyncio.Event)
    changed: asyncio.Condition = field(default_factory=asyncio.Condition)

    async def follow(self, response: httpx.Response) -> None:
        fields: dict[str, str] = {}
        async for line in response.aiter_lines():
            if line.startswith("retry:"):
                self.started.set()
            elif line.startswith(":"):
                async with self.changed:
                    self.comments += 1
                    self.changed.notify_all()
            elif line:
                name, _, value = line.partition(":")
                fields[name] = value.strip()
            elif "data" in fields:
                async with self.changed:
                    self.events.append((fields["id"], fields["event"], orjson.loads(fields["data"])))
                    self.changed.notify_all()
                fields = {}

    async def wait(self, ready: Callable[[SseFollower], bool], timeout: float = 15) -> None:
        async with asyncio.timeout(timeout), self.changed:
            await self.changed.wait_for(lambda: ready(self))


async def stream(client: httpx.AsyncClient, follower: SseFollower, last_event_id: str | None = None) -> None:
    headers = {"Last-Event-ID": last_event_id} if last_event_id is not None else {}
    async with client.stream("GET", "/v1/events/stream", headers=headers, timeout=None) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        await follower.follow(response)


@asynccontextmanager
async def following(client: httpx.AsyncClient, last_event_id: str | None = None) -> AsyncIterator[SseFollower]:
    """The account's event stream read for the length of the block, which begins once the stream
    has started (without a Last-Event-ID it carries only the events after that)."""
    follower = SseFollower()
    task = asyncio.create_task(stream(client, follower, last_event_id))
    try:
        await asyncio.wait_for(follower.started.wait(), 15)
        yield follower
    finally:
        task.cancel()


def versions_of(follower: SseFollower, order_id: str) -> list[int]:
    return [event["data"]["version"] for _, _, event in follower.events if event["data"]["order"]["id"] == order_id]
