"""The events feed over REST and SSE (docs/webhooks.md): the account's events oldest first, each once,
each order's versions ascending; an opaque cursor (a bad one is 400); SSE that starts with new
events only, resumes after Last-Event-ID, and keeps the connection alive."""

from __future__ import annotations

import httpx
import pytest

from order_service.events import encode_cursor
from tests.conftest import client_of
from tests.harness import Stack, bearer
from tests.integration.helpers import assert_problem, create_order
from tests.integration.webhooks import feed_end, following, read_feed, versions_of

client = client_of("webhook_stack")


async def test_the_feed_holds_every_version_once_oldest_first(client: httpx.AsyncClient) -> None:
    cursor = await feed_end(client)
    orders = [await create_order(client, method) for method in ("pm_card_visa", "pm_wallet_qr", "pm_card_visa")]
    refund = await client.post(f"/v1/orders/{orders[0]['id']}/refund", json={"amount": 100})
    assert refund.status_code == 200
    events, _ = await read_feed(client, cursor, page_size=1)  # one page per event: every cursor used
    mine = [(e["data"]["order"]["id"], e["data"]["version"]) for e in events]
    expected = {(orders[0]["id"], v) for v in (1, 2, 3)} | {(orders[1]["id"], v) for v in (1, 2)}
    expected |= {(orders[2]["id"], v) for v in (1, 2)}
    assert set(mine) == expected
    assert len(mine) == len(expected)
    for order in orders:
        versions = [v for order_id, v in mine if order_id == order["id"]]
        assert versions == sorted(versions)
    for event in events:
        assert event["id"].startswith("evt_")
        assert event["type"] == "order.updated"
        assert event["data"]["order"]["version"] == event["data"]["version"]
        assert event["created_at"].endswith("Z")


async def test_without_after_the_feed_starts_at_the_first_event(client: httpx.AsyncClient) -> None:
    await create_order(client)
    first = (await client.get("/v1/events", params={"page_size": 1})).json()
    assert first["events"][0]["data"]["version"] == 1
    everything, _ = await read_feed(client, None)
    assert everything[0] == first["events"][0]


async def test_an_empty_page_has_a_cursor_to_poll_with(client: httpx.AsyncClient) -> None:
    cursor = await feed_end(client)
    empty = (await client.get("/v1/events", params={"after": cursor})).json()
    assert empty == {"events": [], "next_cursor": cursor}
    order = await create_order(client)
    later = (await client.get("/v1/events", params={"after": empty["next_cursor"]})).json()
    assert [(e["data"]["order"]["id"], e["data"]["version"]) for e in later["events"]] == [
        (order["id"], 1),
        (order["id"], 2),
    ]


async def test_another_account_sees_only_its_own_events(client: httpx.AsyncClient, webhook_stack: Stack) -> None:
    order = await create_order(client)
    async with httpx.AsyncClient(base_url=webhook_stack.url, headers=bearer(webhook_stack.keys.other)) as other:
        events, _ = await read_feed(other, None)
    assert order["id"] not in {e["data"]["order"]["id"] for e in events}


@pytest.mark.parametrize(
    "query",
    [{"after": "not-a-cursor"}, {"after": "YzE6LTE"}, {"page_size": "0"}, {"page_size": "101"}, {"page_size": "x"}],
)
async def test_bad_paging_is_400(client: httpx.AsyncClient, query: dict[str, str]) -> None:
    assert_problem(await client.get("/v1/events", params=query), 400)


async def test_the_stream_starts_with_new_events_and_keeps_alive(client: httpx.AsyncClient) -> None:
    before = await create_order(client)
    async with following(client) as follower:
        order = await create_order(client)
        await follower.wait(lambda f: versions_of(f, order["id"]) == [1, 2])
        assert versions_of(follower, before["id"]) == []
        comments = follower.comments
        await follower.wait(lambda f: f.comments > comments)  # SSE_HEARTBEAT_S is 0.5 here
    cursor, name, event = follower.events[-1]
    assert name == "order.updated"
    page = (await client.get("/v1/events", params={"after": cursor})).json()
    assert order["id"] not in [e["data"]["order"]["id"] for e in page["events"]]  # the id is the cursor after it
    assert event["id"].startswith("evt_")


async def test_last_event_id_resumes_after_that_event(client: httpx.AsyncClient) -> None:
    cursor = await feed_end(client)
    order = await create_order(client)
    async with following(client, cursor) as follower:
        await follower.wait(lambda f: versions_of(f, order["id"]) == [1, 2])
    async with following(client, follower.events[0][0]) as resumed:
        await resumed.wait(lambda f: versions_of(f, order["id"]) == [2])


async def test_a_last_event_id_that_is_not_a_cursor_is_400(client: httpx.AsyncClient) -> None:
    reply = await client.get("/v1/events/stream", headers={"Last-Event-ID": "3"})
    problem = assert_problem(reply, 400)
    assert problem["errors"][0]["field"] == "Last-Event-ID"


async def test_read_only_keys_may_follow_the_stream(client: httpx.AsyncClient, webhook_stack: Stack) -> None:
    read_only = bearer(webhook_stack.keys.read_only)
    async with (
        httpx.AsyncClient(base_url=webhook_stack.url, headers=read_only) as reader,
        following(reader) as follower,
    ):
        order = await create_order(client)
        await follower.wait(lambda f: versions_of(f, order["id"]) == [1, 2])


async def test_a_cursor_past_the_accounts_feed_is_refused(client: httpx.AsyncClient) -> None:
    # Another account's cursor, or a made-up one: following it would skip this account's events.
    ahead = encode_cursor(10**12)
    problem = assert_problem(await client.get("/v1/events", params={"after": ahead}), 400)
    assert problem["errors"] == [{"field": "after", "message": "is not a cursor of this account's feed"}]
    problem = assert_problem(await client.get("/v1/events/stream", headers={"Last-Event-ID": ahead}), 400)
    assert problem["errors"][0]["field"] == "Last-Event-ID"


async def test_head_of_the_stream_answers_its_headers_and_ends(client: httpx.AsyncClient) -> None:
    reply = await client.head("/v1/events/stream")
    assert reply.status_code == 200
    assert reply.headers["content-type"].startswith("text/event-stream")
    assert reply.content == b""
