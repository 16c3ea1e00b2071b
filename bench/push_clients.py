"""The four kinds of client of docs/push-channels.md#the-four-ways, each following one order until
it sees a version newer than the one it started from, and counting the HTTP requests it spends on
the way.

They run on one aiohttp session in the benchmark's process, not in the gateway's. Each records
`time.perf_counter()` when it has the new version in hand (the body parsed), so a delay is
measured on one clock from just before the change was requested.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import orjson

from bench import auth

CHANNELS = ("short_poll", "long_poll", "sse", "websocket")


class PushError(Exception):
    pass


@dataclass
class Watcher:
    """One client: ready once it follows the order, `seen_at` once it saw a newer version."""

    start_version: int
    requests: int = 0
    seen_at: float | None = None
    ready: asyncio.Event = field(default_factory=asyncio.Event)

    def saw(self, version: int, arrived: float | None = None) -> bool:
        """True (and the time noted) when `version` is newer than where this watcher started."""
        if version > self.start_version:
            self.seen_at = arrived or time.perf_counter()
            return True
        return False


Follow = Callable[[aiohttp.ClientSession, str, str, Watcher], Coroutine[Any, Any, None]]


def short_poll(interval_s: float) -> Follow:
    """GET with If-None-Match at once, then every `interval_s` on a fixed schedule from a random
    phase (so that a crowd of pollers spreads over the interval, as browsers do)."""

    async def follow(session: aiohttp.ClientSession, base: str, order_id: str, watcher: Watcher) -> None:
        loop = asyncio.get_running_loop()
        tick = loop.time() + random.uniform(0, interval_s)
        etag = f'"{watcher.start_version}"'
        while True:
            watcher.requests += 1
            async with session.get(f"{base}/v1/orders/{order_id}", headers={"If-None-Match": etag}) as response:
                body = await response.read()
                if response.status == 200:
                    if watcher.saw(orjson.loads(body)["version"]):
                        return
                    etag = response.headers.get("ETag", etag)
                elif response.status != 304:
                    raise PushError(f"short poll: {response.status}")
            watcher.ready.set()
            await asyncio.sleep(max(0.0, tick - loop.time()))
            tick += interval_s

    return follow


def long_poll(wait_s: int) -> Follow:
    """GET with `Prefer: wait=N` and If-None-Match, again as soon as each answer arrives."""

    async def follow(session: aiohttp.ClientSession, base: str, order_id: str, watcher: Watcher) -> None:
        etag = f'"{watcher.start_version}"'
        headers = {"If-None-Match": etag, "Prefer": f"wait={wait_s}"}
        while True:
            watcher.requests += 1
            # Ready once the first request is being sent: the trial gives the gateway a moment
            # more to take hold of it before it makes the change.
            watcher.ready.set()
            async with session.get(f"{base}/v1/orders/{order_id}", headers=headers) as response:
                body = await response.read()
                if response.status == 200:
                    if watcher.saw(orjson.loads(body)["version"]):
                        return
                    headers["If-None-Match"] = response.headers.get("ETag", etag)
                elif response.status != 304:
                    raise PushError(f"long poll: {response.status}")
                elif "preference-applied" not in response.headers:
                    raise PushError("long poll: the gateway ignored Prefer: wait")

    return follow


async def sse(session: aiohttp.ClientSession, base: str, order_id: str, watcher: Watcher) -> None:
    """One GET /events; ready at the first event (the current version). Reads whatever bytes
    have arrived in one go, so that a crowd of 1,000 costs this process as little as it can."""
    watcher.requests += 1
    headers = {"Accept": "text/event-stream"}
    async with session.get(f"{base}/v1/orders/{order_id}/events", headers=headers) as response:
        if response.status != 200 or not response.content_type.startswith("text/event-stream"):
            raise PushError(f"sse: {response.status} {response.content_type}")
        buffer = b""
        async for chunk in response.content.iter_any():
            arrived = time.perf_counter()
            buffer = (buffer + chunk).replace(b"\r\n", b"\n")
            while b"\n\n" in buffer:
                block, buffer = buffer.split(b"\n\n", 1)
                data = [line[5:].removeprefix(b" ") for line in block.split(b"\n") if line.startswith(b"data:")]
                if not data:
                    continue  # `retry:` or a `: keep-alive` comment
                if watcher.saw(orjson.loads(b"\n".join(data))["version"], arrived):
                    return
                watcher.ready.set()
    raise PushError("sse: the stream ended before the change")


async def websocket(session: aiohttp.ClientSession, base: str, order_id: str, watcher: Watcher) -> None:
    """One WebSocket; ready at the first frame (the current version)."""
    watcher.requests += 1
    async with session.ws_connect(f"{base}/v1/orders/{order_id}/ws", autoping=True) as ws:
        async for message in ws:
            arrived = time.perf_counter()
            if message.type is not aiohttp.WSMsgType.TEXT:
                break
            frame = orjson.loads(message.data)
            if frame.get("type") != "order.updated":
                continue
            if watcher.saw(frame["version"], arrived):
                return
            watcher.ready.set()
    raise PushError("websocket: closed before the change")


def follower(channel: str, interval_s: float, wait_s: int) -> Follow:
    followers: dict[str, Follow] = {
        "short_poll": short_poll(interval_s),
        "long_poll": long_poll(wait_s),
        "sse": sse,
        "websocket": websocket,
    }
    return followers[channel]


# Drop an idle pooled connection before uvicorn does (its keep-alive timeout is 5 s): reusing
# one the server is closing fails with "connection reset".
_KEEPALIVE_S = 2.0


def new_session() -> aiohttp.ClientSession:
    """A session for many long-lived connections: no pool limit, no overall time limit."""
    return aiohttp.ClientSession(
        headers=auth.headers(),
        connector=aiohttp.TCPConnector(limit=0, keepalive_timeout=_KEEPALIVE_S),
        timeout=aiohttp.ClientTimeout(total=None, connect=30, sock_read=90),
    )
