"""Many clients, one stream: 1,000 watchers of one order (SSE and WebSocket mixed) all see the
confirmation while the order service holds one watch stream for the gateway; and a client that
stops reading is dropped without holding up anyone else, then resumes without a gap."""

from __future__ import annotations

import asyncio
import re
import socket
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
from websockets.asyncio.client import ClientConnection, connect

from tests.artifacts import record
from tests.harness import Stack
from tests.integration.helpers import create_order
from tests.integration.push_clients import (
    confirm,
    current_order,
    gauge,
    refund,
    running_stack,
    sse,
    wait_for_gauge,
    ws_url,
)

WATCHERS = 1000
MAX_CHANGES = 1000
SSE_WATCHERS, SSE = "push_watchers", 'channel="sse"'
_EVENT_ID = re.compile(rb"\nid: (\d+)\n|^id: (\d+)\n")


def _rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS")


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * share))]


class RawSse:
    """A minimal SSE client on a bare socket, so that 500 of them cost the test little."""

    def __init__(self, stack: Stack, order_id: str, receive_buffer: int | None = None) -> None:
        self.stack = stack
        self.path = f"/v1/orders/{order_id}/events"
        self.receive_buffer = receive_buffer
        self.data = b""
        self.reader: asyncio.StreamReader
        self.writer: asyncio.StreamWriter

    async def open(self) -> None:
        sock = socket.socket()
        if self.receive_buffer is not None:  # before connecting, so that the window stays small
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, self.receive_buffer)
        sock.setblocking(False)
        await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", self.stack.gateway_port))
        # The reader stops taking data from the socket past 2 x limit: keep it small for a
        # client that should look stuck.
        limit = 2**16 if self.receive_buffer is None else self.receive_buffer
        self.reader, self.writer = await asyncio.open_connection(sock=sock, limit=limit)
        self.writer.write(
            f"GET {self.path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n"
            f"Authorization: Bearer {self.stack.keys.secret}\r\nConnection: close\r\n\r\n".encode()
        )

    async def until(self, marker: bytes) -> float:
        """Read until `marker` has arrived; returns the wall-clock time it did."""
        while marker not in self.data:
            chunk = await self.reader.read(65536)
            if not chunk:
                raise AssertionError(f"the stream ended before {marker!r}")
            self.data += chunk
        return time.time()

    async def rest(self) -> bytes:
        """Everything up to the end of the response (the server closes: Connection: close)."""
        while chunk := await self.reader.read(65536):
            self.data += chunk
        return self.data

    def ids(self) -> list[int]:
        return [int(a or b) for a, b in _EVENT_ID.findall(self.data)]

    def close(self) -> None:
        self.writer.close()


async def _ws_until(socket: ClientConnection, marker: str) -> float:
    while marker not in (await socket.recv()):
        pass
    return time.time()


def _changed_at(order: dict[str, Any]) -> float:
    return datetime.fromisoformat(order["updated_at"].replace("Z", "+00:00")).timestamp()


async def test_a_thousand_watchers_see_the_confirmation_through_one_stream(tmp_path: Path) -> None:
    async with (
        running_stack(tmp_path) as stack,
        httpx.AsyncClient(base_url=stack.url, headers=stack.headers, timeout=30) as client,
    ):
        order = await create_order(client, "pm_wallet_qr")
        version = order["version"]
        snapshot_marker = b"id: %d\n" % version
        assert stack.gateway.proc is not None
        pid = stack.gateway.proc.pid

        # Warm up both channels once, so that the baseline has their code and buffers.
        warm = RawSse(stack, order["id"])
        await warm.open()
        await warm.until(snapshot_marker)
        warm.close()
        async with connect(ws_url(stack, order["id"]), compression=None, additional_headers=stack.headers) as socket_:
            await socket_.recv()
        await wait_for_gauge(client, "push_watch_streams", 0)
        baseline_kib = _rss_kib(pid)

        sse_clients = [RawSse(stack, order["id"]) for _ in range(WATCHERS // 2)]
        sockets: list[ClientConnection] = []
        async with asyncio.timeout(60):
            for batch in range(0, len(sse_clients), 50):
                group = sse_clients[batch : batch + 50]
                await asyncio.gather(*(c.open() for c in group))
                await asyncio.gather(*(c.until(snapshot_marker) for c in group))
                # Browsers offer permessage-deflate; uvicorn's zlib contexts would dominate the
                # memory figure, so these clients do not (see docs/push-channels.md#websocket).
                opened = await asyncio.gather(
                    *(
                        connect(
                            ws_url(stack, order["id"]),
                            compression=None,
                            open_timeout=30,
                            additional_headers=stack.headers,
                        )
                        for _ in group
                    )
                )
                snapshots = await asyncio.gather(*(s.recv() for s in opened))
                assert all(f'"version":{version},' in s for s in snapshots)
                sockets.extend(opened)
        try:
            await wait_for_gauge(client, "push_watchers", WATCHERS // 2, 'channel="sse"')
            await wait_for_gauge(client, "push_watchers", WATCHERS // 2, 'channel="websocket"')
            # One stream to the order service for all of them.
            await wait_for_gauge(client, "push_watch_streams", 1)
            per_watcher_kib = (_rss_kib(pid) - baseline_kib) / WATCHERS

            await confirm(client, order)
            async with asyncio.timeout(60):
                seen = await asyncio.gather(
                    *(c.until(b'"status":"paid"') for c in sse_clients),
                    *(_ws_until(s, '"status":"paid"') for s in sockets),
                )
            paid = await current_order(client, order["id"])
            assert paid["status"] == "paid"
            delays_ms = [(at - _changed_at(paid)) * 1000 for at in seen]
            assert len(delays_ms) == WATCHERS
            await wait_for_gauge(client, "push_watch_streams", 1)
        finally:
            for c in sse_clients:
                c.close()
            await asyncio.gather(*(s.close() for s in sockets))
        await wait_for_gauge(client, "push_watchers", 0, 'channel="sse"')
        await wait_for_gauge(client, "push_watchers", 0, 'channel="websocket"')
        await wait_for_gauge(client, "push_watch_streams", 0)

        record(
            "push-report",
            "fanout_1000_watchers",
            {
                "watchers": {"sse": WATCHERS // 2, "websocket": WATCHERS // 2},
                "gateway_rss_per_idle_watcher_kib": round(per_watcher_kib, 1),
                "confirm_to_client_ms": {
                    "p50": round(_percentile(delays_ms, 0.5), 1),
                    "p99": round(_percentile(delays_ms, 0.99), 1),
                    "max": round(max(delays_ms), 1),
                },
                "note": "clients run in the test process on the same 2 cores; delays include their work",
            },
        )
        # A leak or a per-client copy of each event would show up here (the goal is < 20 KiB).
        assert per_watcher_kib < 64


async def test_a_client_that_stops_reading_is_dropped_and_delays_nobody(tmp_path: Path) -> None:
    async with (
        running_stack(tmp_path) as stack,
        httpx.AsyncClient(base_url=stack.url, headers=stack.headers, timeout=30) as client,
    ):
        # 100 line items with long SKUs make each event ~11 KB. On loopback the kernel still
        # buffers some MiB for a client that does not read before the gateway's writes block.
        items = [{"sku": f"{i:03d}-" + "X" * 60, "quantity": 1, "unit_price": 100} for i in range(100)]
        order = await create_order(client, "pm_card_visa", items=items)
        stuck = RawSse(stack, order["id"], receive_buffer=4096)
        await stuck.open()  # and never reads until the end
        try:
            async with sse(client, order["id"]) as stream:
                assert (await stream.event()) is not None
                await wait_for_gauge(client, "push_watchers", 2, 'channel="sse"')
                received: list[int] = []
                dropped_after = None
                for change in range(1, MAX_CHANGES + 1):
                    await refund(client, order["id"], 1)
                    block = await stream.event(timeout=5)  # the reader keeps up, change by change
                    assert block is not None
                    received.append(int(block.id or 0))
                    if change % 10 == 0 and gauge((await client.get("/metrics")).text, SSE_WATCHERS, SSE) == 1:
                        dropped_after = change  # only the reader is left
                        break
                assert dropped_after is not None, f"the stuck client was not dropped after {MAX_CHANGES} changes"
                await refund(client, order["id"])
                received.extend(int(block.id or 0) for block in await stream.events_until_end())
            final = order["version"] + dropped_after + 1
            assert received == list(range(order["version"] + 1, final + 1))

            # The stuck client reads at last: what was buffered, then the end, short of the final version.
            await asyncio.wait_for(stuck.rest(), 10)
        finally:
            stuck.close()
        got = stuck.ids()
        assert got == list(range(order["version"], got[-1] + 1))
        assert got[-1] < final
        # It resumes from its last version and misses nothing.
        async with sse(client, order["id"], last_event_id=got[-1]) as stream:
            resumed = [int(block.id or 0) for block in await stream.events_until_end()]
        assert resumed == list(range(got[-1] + 1, final + 1))
        record(
            "push-report",
            "slow_client",
            {"dropped_after_changes": dropped_after, "event_bytes": len(stuck.data) // len(got)},
        )
