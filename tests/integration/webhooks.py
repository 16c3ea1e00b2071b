"""Helpers of the events-feed and webhook suites: reading the feed to its end, following it, and
waiting for what the delivery log says (polled: it is what a user would look at)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
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
