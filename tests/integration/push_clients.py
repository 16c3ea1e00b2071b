"""Clients of the push channels for the integration tests: an SSE reader that sees every line
(retry, comments, ids), WebSocket helpers, and a wait for a Prometheus gauge. Every wait has a
time limit, so a missing event fails the test instead of hanging it."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from tests.harness import Stack

WAIT_S = 10.0


@dataclass
class SseBlock:
    """The lines of one SSE block (up to a blank line)."""

    id: str | None = None
    event: str | None = None
    data: str | None = None
    retry: int | None = None
    comments: list[str] = field(default_factory=list)

    @property
    def message(self) -> dict[str, Any]:
        assert self.data is not None, self
        return json.loads(self.data)  # type: ignore[no-any-return]


class SseReader:
    def __init__(self, response: httpx.Response) -> None:
        self.response = response
        self._lines = response.aiter_lines()

    async def block(self, timeout: float = WAIT_S) -> SseBlock | None:
        """The next block, or None at the end of the stream."""
        current = SseBlock()
        started = False
        async with asyncio.timeout(timeout):
            async for line in self._lines:
                if not line:
                    if started:
                        return current
                    continue
                started = True
                name, _, value = line.partition(":")
                value = value.removeprefix(" ")
                if name == "":
                    current.comments.append(value)
                elif name == "data":
                    current.data = value if current.data is None else f"{current.data}\n{value}"
                elif name == "id":
                    current.id = value
                elif name == "event":
                    current.event = value
                elif name == "retry":
                    current.retry = int(value)
        return current if started else None

    async def event(self, timeout: float = WAIT_S) -> SseBlock | None:
        """The next block that carries data (past retry and keep-alive blocks), or None at the end."""
        async with asyncio.timeout(timeout):
            while (block := await self.block(timeout)) is not None:
                if block.data is not None:
                    return block
        return None

    async def events_until_end(self, timeout: float = WAIT_S) -> list[SseBlock]:
        found: list[SseBlock] = []
        async with asyncio.timeout(timeout):
            while (block := await self.event(timeout)) is not None:
                found.append(block)
        return found


@asynccontextmanager
async def sse(
    client: httpx.AsyncClient, order_id: str, last_event_id: int | str | None = None
) -> AsyncIterator[SseReader]:
    headers = {"Accept": "text/event-stream"}
    if last_event_id is not None:
        headers["Last-Event-ID"] = str(last_event_id)
    async with client.stream("GET", f"/v1/orders/{order_id}/events", headers=headers) as response:
        assert response.status_code == 200, await response.aread()
        yield SseReader(response)


def ws_url(stack: Stack, order_id: str, after_version: int | str | None = None) -> str:
    query = f"?after_version={after_version}" if after_version is not None else ""
    return f"{stack.url.replace('http://', 'ws://')}/v1/orders/{order_id}/ws{query}"


@asynccontextmanager
async def websocket(
    stack: Stack, order_id: str, after_version: int | str | None = None
) -> AsyncIterator[ClientConnection]:
    url = ws_url(stack, order_id, after_version)
    async with connect(url, open_timeout=WAIT_S, close_timeout=2, additional_headers=stack.headers) as socket:
        yield socket


async def ws_message(socket: ClientConnection, timeout: float = WAIT_S) -> dict[str, Any]:
    async with asyncio.timeout(timeout):
        frame = await socket.recv()
    assert isinstance(frame, str), "the server sends text frames"
    return json.loads(frame)  # type: ignore[no-any-return]


async def ws_closed(socket: ClientConnection, timeout: float = WAIT_S) -> tuple[int | None, list[dict[str, Any]]]:
    """Read until the server closes the socket: (close code, the messages received before)."""
    messages: list[dict[str, Any]] = []
    async with asyncio.timeout(timeout):
        try:
            while True:
                messages.append(json.loads(await socket.recv()))
        except ConnectionClosed:
            pass
    return socket.close_code, messages


def gauge(metrics_text: str, name: str, labels: str = "") -> float:
    """The value of one sample in Prometheus text format (0 when absent)."""
    pattern = re.compile(rf"^{re.escape(name)}{re.escape('{' + labels + '}') if labels else ''} (\S+)$", re.MULTILINE)
    match = pattern.search(metrics_text)
    return float(match.group(1)) if match else 0.0


async def wait_for_gauge(
    client: httpx.AsyncClient, name: str, value: float, labels: str = "", timeout: float = WAIT_S
) -> None:
    """Until the gateway's /metrics shows `value` for the sample (checked every 20 ms: the
    gateway is another process, with nothing to await but its answers)."""
    seen = None
    try:
        async with asyncio.timeout(timeout):
            while (seen := gauge((await client.get("/metrics")).text, name, labels)) != value:  # noqa: ASYNC110
                await asyncio.sleep(0.02)
    except TimeoutError:
        raise AssertionError(f"{name}{{{labels}}} stayed {seen}, expected {value}") from None


@asynccontextmanager
async def running_stack(
    workdir: Path, env: dict[str, str] | None = None, service_env: dict[str, dict[str, str]] | None = None
) -> AsyncIterator[Stack]:
    """A stack of its own, configured by `env` / `service_env`, started and stopped around the block."""
    stack = Stack(workdir, env=env or {}, service_env=service_env or {})
    try:
        await asyncio.to_thread(stack.start)
        yield stack
    finally:
        await asyncio.to_thread(stack.stop)


async def current_order(client: httpx.AsyncClient, order_id: str) -> dict[str, Any]:
    reply = await client.get(f"/v1/orders/{order_id}")
    assert reply.status_code == 200, reply.text
    return reply.json()  # type: ignore[no-any-return]


async def confirm(client: httpx.AsyncClient, order: dict[str, Any], approve: bool = True) -> None:
    reply = await client.post(f"/v1/payments/{order['payment']['id']}/confirm", json={"approve": approve})
    assert reply.status_code == 200, reply.text


async def refund(client: httpx.AsyncClient, order_id: str, amount: int | None = None) -> dict[str, Any]:
    reply = await client.post(f"/v1/orders/{order_id}/refund", json={} if amount is None else {"amount": amount})
    assert reply.status_code == 200, reply.text
    return reply.json()  # type: ignore[no-any-return]
