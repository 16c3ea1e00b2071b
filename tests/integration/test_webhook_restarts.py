"""Webhooks across restarts (docs/webhooks.md): every event is delivered at least once through a
SIGKILL of the order service in the middle of its attempts and a restart of everything, in
version order per order; and the address check is made again at every attempt (a delivery to
an address that is no longer allowed fails, saying why, and nothing is sent)."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from typing import Any

import orjson

from tests.conftest import WEBHOOK_ENV
from tests.harness import Stack
from tests.integration.helpers import create_order
from tests.integration.webhooks import deliveries, following, versions_of, wait_deliveries
from tests.webhook_receiver import Arrival, Behaviour, receiving

ORDERS = 5


def fresh(stack: Stack, **env: str) -> Stack:
    for service in stack.services.values():
        service.env.update({**WEBHOOK_ENV, **env})
    return stack


async def test_every_event_arrives_through_a_sigkill_and_a_restart_of_everything(fresh_stack: Stack) -> None:
    stack = fresh(fresh_stack, WEBHOOK_TIMEOUT_S="2", WEBHOOK_RETRY_SCHEDULE_S="0.5,1,1,1,1,1,1,1,1,1").start()
    held = asyncio.Event()
    async with (
        receiving() as receiver,
        stack.client() as client,
    ):
        receiver.behaviours["/hook"] = Behaviour(hold=held)
        hook = (await client.post("/v1/webhook_endpoints", json={"url": receiver.url()})).json()
        orders = [await create_order(client) for _ in range(ORDERS)]
        await receiver.wait_for("/hook", 1)  # attempts are in flight, their answers held back
        stack.order.kill()
        stack.stop()
        held.set()
        stack.start()
        expected = {(o["id"], v) for o in orders for v in (1, 2)}
        async with asyncio.timeout(60):
            while True:
                seen = {(e["data"]["order"]["id"], e["data"]["version"]) for e in map(_event, receiver.at("/hook"))}
                if expected <= seen:
                    break
                await receiver.wait_for("/hook", len(receiver.at("/hook")) + 1)
        for order in orders:
            await wait_deliveries(
                client, hook["id"], order["id"], lambda found: {d["status"] for d in found} == {"succeeded"}
            )
    by_order: dict[str, list[int]] = defaultdict(list)
    for event in map(_event, receiver.at("/hook")):
        by_order[event["data"]["order"]["id"]].append(event["data"]["version"])
    for order in orders:
        versions = by_order[order["id"]]
        assert versions == sorted(versions), versions  # a resend repeats a version, never goes back
        assert set(versions) == {1, 2}


def _event(arrival: Arrival) -> Any:
    return orjson.loads(arrival.body)


async def test_the_address_is_checked_again_at_every_attempt(fresh_stack: Stack) -> None:
    stack = fresh(fresh_stack).start()
    async with (
        receiving() as receiver,
        stack.client() as client,
    ):
        hook = (await client.post("/v1/webhook_endpoints", json={"url": receiver.url()})).json()
        # What a change of DNS would do to a name: the address the URL reaches is no longer allowed.
        stack.order.env["WEBHOOK_ALLOW_PRIVATE_NETWORKS"] = "false"
        stack.restart("order_service")
        order = await create_order(client)
        log = await wait_deliveries(
            client, hook["id"], order["id"], lambda found: len(found) == 2 and all(d["attempts"] for d in found)
        )
        assert {d["last_status_code"] for d in log} == {None}
        for delivery in log:
            assert delivery["last_error"].startswith("not sent: the host is or resolves to a loopback address")
            assert "127.0.0.1" not in delivery["last_error"]
        assert receiver.arrivals == []
        assert len(await deliveries(client, hook["id"])) == 2


async def test_the_feed_stream_goes_on_across_a_restart_of_the_order_service(fresh_stack: Stack) -> None:
    """The gateway opens the feed's gRPC stream again from the last cursor it sent: the client's
    SSE response goes on, and misses nothing committed meanwhile."""
    stack = fresh(fresh_stack).start()
    async with stack.client() as client, following(client) as follower:
        before = await create_order(client)
        await follower.wait(lambda f: versions_of(f, before["id"]) == [1, 2])
        await asyncio.to_thread(stack.restart, "order_service")
        after = await create_order(client)
        # No reconnection here: the events come on the response that was open all along.
        await follower.wait(lambda f: versions_of(f, after["id"]) == [1, 2], timeout=45)
    orders = [event["data"]["order"]["id"] for _, _, event in follower.events]
    assert orders == [before["id"]] * 2 + [after["id"]] * 2
