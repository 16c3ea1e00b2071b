"""Every channel goes on after the order service restarts (SIGTERM) or crashes (SIGKILL):
the gateway re-opens its watch with the last version it saw, and a client that was away
resumes from the durable event log."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest

from tests.harness import Stack
from tests.integration.helpers import create_order
from tests.integration.push_clients import (
    confirm,
    current_order,
    refund,
    running_stack,
    sse,
    wait_for_gauge,
    websocket,
    ws_message,
)


def _restart(stack: Stack, how: str) -> None:
    if how == "sigterm":
        stack.restart("order_service")
    else:
        stack.order.kill()
        stack.order.start()
        stack.wait_ready()


@pytest.mark.parametrize("how", ["sigterm", "sigkill"])
async def test_every_channel_goes_on_after_the_order_service_restarts(tmp_path: Path, how: str) -> None:
    async with (
        running_stack(tmp_path) as stack,
        httpx.AsyncClient(base_url=stack.url, headers=stack.headers, timeout=30) as client,
    ):
        order = await create_order(client, "pm_wallet_qr")
        order_id, first = order["id"], order["version"]

        # A client that sees the snapshot and goes away before the restart.
        async with sse(client, order_id) as away:
            seen = await away.event()
        assert seen is not None
        assert seen.id == str(first)

        async with sse(client, order_id) as stream, websocket(stack, order_id) as socket:
            assert (await stream.event()) is not None
            assert (await ws_message(socket))["version"] == first
            held = asyncio.create_task(
                client.get(f"/v1/orders/{order_id}", headers={"If-None-Match": f'"{first}"', "Prefer": "wait=30"})
            )
            await wait_for_gauge(client, "push_watchers", 1, 'channel="long_poll"')  # it is held
            await asyncio.to_thread(_restart, stack, how)
            await confirm(client, order)

            update = await stream.event()
            assert update is not None
            assert update.id == str(first + 1)
            assert update.message["order"] == await current_order(client, order_id)
            assert (await ws_message(socket))["order"]["status"] == "paid"
            reply = await asyncio.wait_for(held, 10)
            assert (reply.status_code, reply.json()["status"]) == (200, "paid")
            # Still one stream to the order service for this order.
            await wait_for_gauge(client, "push_watch_streams", 1)

        await refund(client, order_id, 100)
        await wait_for_gauge(client, "push_watch_streams", 0)
        # The client that was away comes back: the versions it missed come from the order
        # service's log, across the restart.
        async with sse(client, order_id, last_event_id=seen.id) as stream:
            missed = [await stream.event(), await stream.event()]
        assert [block.id for block in missed if block] == [str(first + 1), str(first + 2)]
        async with websocket(stack, order_id, after_version=first) as socket:
            statuses = [(await ws_message(socket))["order"]["status"] for _ in range(2)]
        assert statuses == ["paid", "partially_refunded"]
