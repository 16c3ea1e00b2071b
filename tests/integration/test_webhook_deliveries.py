"""Webhook deliveries through the real services (docs/webhooks.md), to real receivers on loopback:
every event arrives signed (verified with the Standard Webhooks library), in version order per
order; failures are retried on the schedule, then `failed`; a receiver that misbehaves — a
redirect, a huge, slow or garbage answer — costs only its own deliveries."""

from __future__ import annotations

import httpx
import orjson
import pytest

from tests.conftest import client_of
from tests.integration.helpers import create_order
from tests.integration.webhooks import all_final, deliveries, endpoint, feed_end, of_order, read_feed, wait_deliveries
from tests.webhook_receiver import Behaviour, Receiver, garbage

# The stack's WEBHOOK_RETRY_SCHEDULE_S "0.2,0.2": three attempts in all.
ATTEMPTS = 3


client = client_of("webhook_stack")


async def paid_and_refunded(client: httpx.AsyncClient) -> dict[str, object]:
    """An order through four versions: pending_payment, requires_action, paid, refunded."""
    order = await create_order(client, "pm_wallet_qr")
    confirmed = await client.post(f"/v1/payments/{order['payment']['id']}/confirm", json={})
    assert confirmed.status_code == 200, confirmed.text
    refunded = await client.post(f"/v1/orders/{order['id']}/refund", json={})
    assert refunded.status_code == 200, refunded.text
    assert refunded.json()["version"] == 4
    return order


async def test_every_event_arrives_signed_in_order_as_the_feed_has_it(
    client: httpx.AsyncClient, receiver: Receiver
) -> None:
    cursor = await feed_end(client)
    async with endpoint(client, receiver) as hook:
        order = await paid_and_refunded(client)
        await wait_deliveries(client, hook["id"], str(order["id"]), all_final(4))
    arrivals = of_order(receiver.at("/hook"), str(order["id"]))
    assert [a.verified(hook["secret"])["data"]["version"] for a in arrivals] == [1, 2, 3, 4]  # type: ignore[index]
    feed, _ = await read_feed(client, cursor)
    feed_events = [e for e in feed if e["data"]["order"]["id"] == order["id"]]
    for arrival, event in zip(arrivals, feed_events, strict=True):
        assert arrival.webhook_id == event["id"]
        assert orjson.loads(arrival.body) == event  # the same document in the feed and the webhook
        assert arrival.headers["content-type"] == "application/json"
        assert arrival.headers["webhook-timestamp"].isdigit()
    log = await deliveries(client, hook["id"], str(order["id"]))
    assert [(d["version"], d["status"], d["attempts"], d["last_status_code"]) for d in log] == [
        (v, "succeeded", 1, 204) for v in (4, 3, 2, 1)
    ]  # newest first
    assert all(d["next_attempt_at"] is None and d["last_error"] is None for d in log)


async def test_a_failure_is_retried_with_the_same_webhook_id(client: httpx.AsyncClient, receiver: Receiver) -> None:
    receiver.behaviours["/flaky"] = Behaviour(fail_first=1)
    async with endpoint(client, receiver, "/flaky") as hook:
        order = await create_order(client)  # pending_payment, then paid: 2 events
        log = await wait_deliveries(client, hook["id"], order["id"], all_final(2))
    assert {(d["status"], d["last_status_code"]) for d in log} == {("succeeded", 204)}
    assert sorted(d["attempts"] for d in log) == [1, 2]  # the first request failed: the first event's
    arrivals = of_order(receiver.at("/flaky"), order["id"])
    assert [a.webhook_id for a in arrivals] == [log[1]["event_id"], log[1]["event_id"], log[0]["event_id"]]
    for arrival in arrivals:
        arrival.verified(hook["secret"])


async def test_after_the_schedule_a_delivery_fails_and_the_next_version_goes(
    client: httpx.AsyncClient, receiver: Receiver
) -> None:
    receiver.behaviours["/down"] = Behaviour(status=500)
    async with endpoint(client, receiver, "/down") as hook:
        order = await create_order(client)
        log = await wait_deliveries(client, hook["id"], order["id"], all_final(2))
    assert [(d["version"], d["status"], d["attempts"], d["last_status_code"]) for d in log] == [
        (2, "failed", ATTEMPTS, 500),
        (1, "failed", ATTEMPTS, 500),
    ]
    assert all(d["last_error"] == "the endpoint answered HTTP 500" for d in log)
    versions = [orjson.loads(a.body)["data"]["version"] for a in of_order(receiver.at("/down"), order["id"])]
    assert versions == [1] * ATTEMPTS + [2] * ATTEMPTS  # version 2 only once version 1 had failed for good


@pytest.mark.parametrize(
    ("behaviour", "error"),
    [
        (Behaviour(status=301, location="http://127.0.0.1:9/"), "redirects are not followed"),
        (Behaviour(status=200, body_bytes=200 * 1024), "over 64 KiB"),
        (Behaviour(status=200, stall_s=5), "no complete answer within 1 s"),
    ],
    ids=["redirect", "huge body", "slow body"],
)
async def test_a_misbehaving_receiver_costs_only_its_own_deliveries(
    client: httpx.AsyncClient, receiver: Receiver, behaviour: Behaviour, error: str
) -> None:
    receiver.behaviours["/odd"] = behaviour
    async with endpoint(client, receiver, "/odd") as odd, endpoint(client, receiver, "/fine") as fine:
        order = await create_order(client)
        # The healthy endpoint has both events while the odd one is still on its first.
        await receiver.wait_for("/fine", 2)
        assert len(of_order(receiver.at("/fine"), order["id"])) == 2
        log = await wait_deliveries(client, odd["id"], order["id"], all_final(2))
        fine_log = await deliveries(client, fine["id"], order["id"])
    assert {(d["status"], d["attempts"]) for d in log} == {("failed", ATTEMPTS)}
    assert all(error in d["last_error"] for d in log)
    assert {(d["status"], d["attempts"]) for d in fine_log} == {("succeeded", 1)}


async def test_an_answer_that_is_not_http_is_a_failed_attempt(client: httpx.AsyncClient) -> None:
    async with garbage() as (url, seen):
        reply = await client.post("/v1/webhook_endpoints", json={"url": url})
        hook = reply.json()
        try:
            order = await create_order(client)
            log = await wait_deliveries(client, hook["id"], order["id"], all_final(2))
        finally:
            await client.delete(f"/v1/webhook_endpoints/{hook['id']}")
    assert {(d["status"], d["attempts"], d["last_status_code"]) for d in log} == {("failed", ATTEMPTS, None)}
    assert {d["last_error"] for d in log} == {"the answer is not valid HTTP"}
    assert len(seen) >= 2 * ATTEMPTS


async def test_while_a_rotation_overlaps_both_secrets_sign(client: httpx.AsyncClient, receiver: Receiver) -> None:
    async with endpoint(client, receiver, "/rotated") as hook:
        rotated = (await client.post(f"/v1/webhook_endpoints/{hook['id']}/rotate_secret")).json()
        order = await create_order(client)
        await wait_deliveries(client, hook["id"], order["id"], all_final(2))
    for arrival in of_order(receiver.at("/rotated"), order["id"]):
        assert len(arrival.headers["webhook-signature"].split(" ")) == 2
        arrival.verified(hook["secret"])
        arrival.verified(rotated["secret"])


async def test_a_deleted_endpoint_gets_nothing_more(client: httpx.AsyncClient, receiver: Receiver) -> None:
    async with endpoint(client, receiver, "/deleted") as deleted, endpoint(client, receiver, "/kept"):
        reply = await client.delete(f"/v1/webhook_endpoints/{deleted['id']}")
        assert reply.json()["status"] == "deleted"
        order = await create_order(client)
        await receiver.wait_for("/kept", 2)
        assert of_order(receiver.at("/kept"), order["id"])
    assert of_order(receiver.at("/deleted"), order["id"]) == []
    assert await deliveries(client, deleted["id"], order["id"]) == []
