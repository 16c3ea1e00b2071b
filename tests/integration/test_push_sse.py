"""Server-Sent Events, GET /v1/orders/{id}/events (docs/push-channels.md#server-sent-events),
against the real services."""

from __future__ import annotations

from pathlib import Path

import httpx

from tests.harness import Stack
from tests.integration.helpers import assert_problem, create_order
from tests.integration.push_clients import (
    SseBlock,
    confirm,
    current_order,
    refund,
    running_stack,
    sse,
    websocket,
    ws_message,
)


async def test_retry_then_snapshot_then_live_update(client: httpx.AsyncClient) -> None:
    order = await create_order(client, "pm_wallet_qr")
    async with sse(client, order["id"]) as stream:
        assert stream.response.headers["content-type"].startswith("text/event-stream")
        assert stream.response.headers["cache-control"] == "no-store"
        assert await stream.block() == SseBlock(retry=2000)

        snapshot = await stream.event()
        assert snapshot is not None
        assert (snapshot.id, snapshot.event) == (str(order["version"]), "order.updated")
        assert snapshot.message == {
            "type": "order.updated",
            "version": order["version"],
            "order": await current_order(client, order["id"]),
        }

        await confirm(client, order)
        update = await stream.event()
        assert update is not None
        assert (update.id, update.event) == (str(order["version"] + 1), "order.updated")
        paid = await current_order(client, order["id"])
        assert paid["status"] == "paid"
        assert update.message == {"type": "order.updated", "version": paid["version"], "order": paid}


async def test_ends_after_a_final_status_and_a_reconnect_past_it_gets_204(client: httpx.AsyncClient) -> None:
    order = await create_order(client, "pm_wallet_qr")
    async with sse(client, order["id"]) as stream:
        assert await stream.event() is not None
        await confirm(client, order, approve=False)
        rest = await stream.events_until_end()
    assert [block.message["order"]["status"] for block in rest] == ["payment_failed"]
    final = rest[0].message["version"]

    for last_event_id in (final, final + 7):
        reply = await client.get(f"/v1/orders/{order['id']}/events", headers={"Last-Event-ID": str(last_event_id)})
        assert reply.status_code == 204
        assert reply.content == b""

    # From before the final version: what was missed, then the end.
    async with sse(client, order["id"], last_event_id=final - 1) as stream:
        assert [block.id for block in await stream.events_until_end()] == [str(final)]


async def test_snapshot_of_a_final_order_is_sent_then_the_stream_ends(client: httpx.AsyncClient) -> None:
    order = await create_order(client, "pm_card_chargeDeclined")
    assert order["status"] == "payment_failed"
    async with sse(client, order["id"]) as stream:
        events = await stream.events_until_end()
    assert [(block.id, block.message["order"]) for block in events] == [(str(order["version"]), order)]


async def test_last_event_id_replays_every_missed_version_in_order_then_goes_live(client: httpx.AsyncClient) -> None:
    order = await create_order(client, "pm_wallet_qr")
    async with sse(client, order["id"]) as stream:
        snapshot = await stream.event()
    assert snapshot is not None
    assert snapshot.id == str(order["version"])
    # Disconnected: two versions happen that this client does not see.
    await confirm(client, order)
    await refund(client, order["id"], 100)

    async with sse(client, order["id"], last_event_id=snapshot.id) as stream:
        replayed = [await stream.event(), await stream.event()]
        await refund(client, order["id"])  # live, after the replay
        rest = await stream.events_until_end()
    events = [block for block in [*replayed, *rest] if block is not None]
    versions = [int(block.id or 0) for block in events]
    assert versions == list(range(order["version"] + 1, order["version"] + 4))
    assert [block.message["version"] for block in events] == versions
    assert [block.message["order"]["status"] for block in events] == ["paid", "partially_refunded", "refunded"]


async def test_many_quick_changes_arrive_complete_in_order_on_every_channel(
    client: httpx.AsyncClient, stack: Stack
) -> None:
    order = await create_order(client, "pm_card_visa")
    changes = 25
    # Each follows from the version it was given: the changes may begin before it is connected.
    async with (
        sse(client, order["id"], last_event_id=order["version"]) as stream,
        websocket(stack, order["id"], after_version=order["version"]) as socket,
    ):
        for _ in range(changes):
            await refund(client, order["id"], 1)
        await refund(client, order["id"])
        sse_versions = [int(block.id or 0) for block in await stream.events_until_end()]
        ws_versions = [(await ws_message(socket))["version"] for _ in range(changes + 1)]
    expected = list(range(order["version"] + 1, order["version"] + changes + 2))
    assert sse_versions == expected
    assert ws_versions == expected


async def test_keep_alive_comment_every_heartbeat(tmp_path: Path) -> None:
    async with (
        running_stack(tmp_path, env={"SSE_HEARTBEAT_S": "0.2"}) as stack,
        stack.client() as client,
    ):
        order = await create_order(client, "pm_wallet_qr")
        async with sse(client, order["id"]) as stream:
            assert (await stream.block()) == SseBlock(retry=2000)
            assert (await stream.block(timeout=5)) is not None  # the snapshot
            for _ in range(3):
                assert await stream.block(timeout=5) == SseBlock(comments=["keep-alive"])


async def test_unknown_order_is_404_problem(client: httpx.AsyncClient) -> None:
    reply = await client.get("/v1/orders/ord_00000000000000000000000000/events")
    assert_problem(reply, 404, "NOT_FOUND")


async def test_invalid_last_event_id_is_400(client: httpx.AsyncClient) -> None:
    order = await create_order(client, "pm_wallet_qr")
    for value in ("abc", "-1", "1.5"):
        reply = await client.get(f"/v1/orders/{order['id']}/events", headers={"Last-Event-ID": value})
        body = assert_problem(reply, 400)
        assert body["errors"][0]["field"] == "Last-Event-ID"


async def test_resume_points_last_event_id_0_replays_everything_and_ahead_is_400(client: httpx.AsyncClient) -> None:
    order = await create_order(client, "pm_wallet_qr")  # versions 1 (pending) and 2 (requires_action)
    async with sse(client, order["id"], last_event_id=0) as stream:
        assert await stream.block() == SseBlock(retry=2000)
        replayed = [await stream.event() for _ in range(order["version"])]
    assert [e.id for e in replayed if e is not None] == [str(v) for v in range(1, order["version"] + 1)]
    assert replayed[0] is not None
    assert replayed[0].message["order"]["status"] == "pending_payment"

    ahead = await client.get(f"/v1/orders/{order['id']}/events", headers={"Last-Event-ID": str(order["version"] + 1)})
    body = assert_problem(ahead, 400, "INVALID_ARGUMENT")
    assert [e["field"] for e in body["errors"]] == ["Last-Event-ID"]
