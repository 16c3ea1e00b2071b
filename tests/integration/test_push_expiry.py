"""A payment nobody confirms within PAYMENT_ACTION_TIMEOUT_S fails as `expired`; its order
becomes payment_failed and every watcher is told (docs/rest-api.md#test-payment-methods,
docs/demo-page.md#when-nobody-confirms) — also when the order service was down at the deadline and
learns of it only after its restart.

The order may expire before a watcher is connected (1.5 s is short on a busy machine): each
watcher follows from the version the order was created with, so that it is told either way."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path
from typing import Any

import httpx

from tests.harness import Stack
from tests.integration.helpers import assert_problem, create_order
from tests.integration.push_clients import (
    current_order,
    running_stack,
    sse,
    websocket,
    ws_closed,
)

SERVICE_ENV = {
    "payment_service": {"PAYMENT_ACTION_TIMEOUT_S": "1.5"},
    "order_service": {"ORDER_RECONCILE_INTERVAL_S": "0.2"},
}
# Long enough that the order service is surely stopped before the deadline: what has to happen
# first is two connections and a SIGTERM, and the test checks that it did (`_stored_status`).
DOWN_AT_THE_DEADLINE_ENV = {**SERVICE_ENV, "payment_service": {"PAYMENT_ACTION_TIMEOUT_S": "8"}}


def _stored_status(stack: Stack, order_id: str) -> str:
    """The order's status in the order service's database (read while the service is down)."""
    with sqlite3.connect(f"file:{stack.workdir / 'orders.db'}?mode=ro", uri=True) as db:
        return str(db.execute("SELECT status FROM orders WHERE id = ?", (order_id,)).fetchone()[0])


def _assert_expired(order: dict[str, Any]) -> None:
    assert order["status"] == "payment_failed"
    assert order["payment"]["status"] == "failed"
    assert order["payment"]["failure_code"] == "expired"
    assert order["payment"]["next_action"] is None


async def test_an_unconfirmed_payment_expires_and_every_watcher_is_told(tmp_path: Path) -> None:
    async with (
        running_stack(tmp_path, service_env=SERVICE_ENV) as stack,
        httpx.AsyncClient(base_url=stack.url, headers=stack.headers, timeout=30) as client,
    ):
        order = await create_order(client, "pm_wallet_qr")
        assert order["payment"]["next_action"]["expires_at"]
        headers = {"If-None-Match": f'"{order["version"]}"', "Prefer": "wait=30"}
        held = asyncio.create_task(client.get(f"/v1/orders/{order['id']}", headers=headers))
        async with (
            sse(client, order["id"], last_event_id=order["version"]) as stream,
            websocket(stack, order["id"], after_version=order["version"]) as socket,
        ):
            events = await stream.events_until_end(timeout=20)
            code, messages = await ws_closed(socket, timeout=20)
        reply = await asyncio.wait_for(held, 20)

        final = await current_order(client, order["id"])
        _assert_expired(final)
        assert [block.message["order"] for block in events] == [final]
        assert (code, [m["order"] for m in messages]) == (1000, [final])
        assert (reply.status_code, reply.json()) == (200, final)
        # Too late to approve now.
        late = await client.post(f"/v1/payments/{order['payment']['id']}/confirm", json={})
        assert_problem(late, 400, "FAILED_PRECONDITION")


async def test_watchers_are_told_when_the_order_service_was_down_at_the_deadline(tmp_path: Path) -> None:
    async with (
        running_stack(tmp_path, service_env=DOWN_AT_THE_DEADLINE_ENV) as stack,
        httpx.AsyncClient(base_url=stack.url, headers=stack.headers, timeout=30) as client,
    ):
        order = await create_order(client, "pm_wallet_qr")
        payment_id = order["payment"]["id"]
        async with (
            sse(client, order["id"], last_event_id=order["version"]) as stream,
            websocket(stack, order["id"], after_version=order["version"]) as socket,
        ):
            await asyncio.to_thread(stack.order.stop)
            # What this test is about: the order service stopped before it could learn of the expiry.
            assert _stored_status(stack, order["id"]) == "requires_action"
            # The deadline passes while the order service is down: the payment service says so.
            async with asyncio.timeout(20):
                while (await client.get(f"/v1/payments/{payment_id}")).json()["status"] != "failed":  # noqa: ASYNC110
                    await asyncio.sleep(0.1)
            stack.order.start()
            await asyncio.to_thread(stack.wait_ready)

            events = await stream.events_until_end(timeout=20)
            code, messages = await ws_closed(socket, timeout=20)
        final = await current_order(client, order["id"])
        _assert_expired(final)
        assert [block.message["order"] for block in events] == [final]
        assert (code, [m["order"] for m in messages]) == (1000, [final])
