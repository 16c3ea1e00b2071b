"""WebSocket, WS /v1/orders/{id}/ws (docs/push-channels.md#websocket), against the real services."""

from __future__ import annotations

import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from tests.harness import Stack
from tests.integration.helpers import create_order
from tests.integration.push_clients import (
    confirm,
    current_order,
    refund,
    websocket,
    ws_closed,
    ws_message,
    ws_url,
)


async def test_snapshot_live_update_and_close_1000_after_a_final_status(
    client: httpx.AsyncClient, stack: Stack
) -> None:
    order = await create_order(client, "pm_wallet_qr")
    async with websocket(stack, order["id"]) as socket:
        snapshot = await ws_message(socket)
        assert snapshot == {
            "type": "order.updated",
            "version": order["version"],
            "order": await current_order(client, order["id"]),
        }
        await confirm(client, order, approve=False)
        code, messages = await ws_closed(socket)
    assert code == 1000
    failed = await current_order(client, order["id"])
    assert failed["status"] == "payment_failed"
    assert messages == [{"type": "order.updated", "version": failed["version"], "order": failed}]


async def test_ping_gets_pong(client: httpx.AsyncClient, stack: Stack) -> None:
    order = await create_order(client, "pm_wallet_qr")
    async with websocket(stack, order["id"]) as socket:
        await ws_message(socket)  # the snapshot
        for _ in range(3):
            await socket.send('{"type": "ping"}')
            assert await ws_message(socket) == {"type": "pong"}
        await confirm(client, order)  # still live after the pings
        assert (await ws_message(socket))["order"]["status"] == "paid"


@pytest.mark.parametrize("frame", ["hello", '{"type": "subscribe"}', "[1, 2]", '{"kind": "ping"}', b"\x00binary"])
async def test_anything_but_ping_closes_1003(client: httpx.AsyncClient, stack: Stack, frame: str | bytes) -> None:
    order = await create_order(client, "pm_wallet_qr")
    async with websocket(stack, order["id"]) as socket:
        await ws_message(socket)
        await socket.send(frame)
        code, messages = await ws_closed(socket)
    assert code == 1003
    assert messages == []


async def test_unknown_order_closes_4404(stack: Stack) -> None:
    async with websocket(stack, "ord_00000000000000000000000000") as socket:
        code, messages = await ws_closed(socket)
    assert code == 4404
    assert socket.close_reason == "order not found"
    assert messages == []


async def test_after_version_replays_then_goes_live(client: httpx.AsyncClient, stack: Stack) -> None:
    order = await create_order(client, "pm_wallet_qr")
    first = order["version"]
    await confirm(client, order)
    await refund(client, order["id"], 100)
    async with websocket(stack, order["id"], after_version=first) as socket:
        replayed = [await ws_message(socket), await ws_message(socket)]
        await refund(client, order["id"])
        code, live = await ws_closed(socket)
    assert [m["version"] for m in [*replayed, *live]] == [first + 1, first + 2, first + 3]
    assert [m["order"]["status"] for m in [*replayed, *live]] == ["paid", "partially_refunded", "refunded"]
    assert code == 1000


async def test_after_version_at_the_final_version_closes_1000_at_once(client: httpx.AsyncClient, stack: Stack) -> None:
    order = await create_order(client, "pm_card_chargeDeclined")
    async with websocket(stack, order["id"], after_version=order["version"]) as socket:
        code, messages = await ws_closed(socket)
    assert (code, messages) == (1000, [])


@pytest.mark.parametrize("after_version", ["-1", "x", "", "99"])
async def test_invalid_or_ahead_after_version_is_closed_1008(
    client: httpx.AsyncClient, stack: Stack, after_version: str
) -> None:
    order = await create_order(client, "pm_wallet_qr")
    # Closed after the handshake, so that a browser's WebSocket sees the code and the reason.
    async with connect(
        ws_url(stack, order["id"], after_version), open_timeout=10, additional_headers=stack.headers
    ) as socket:
        with pytest.raises(ConnectionClosed):
            await socket.recv()
    assert socket.close_code == 1008
    assert socket.close_reason
