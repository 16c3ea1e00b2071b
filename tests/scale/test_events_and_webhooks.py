"""The events feed and webhooks with two replicas of every service on PostgreSQL
(docs/webhooks.md#why-the-cursor-never-skips-an-event, docs/webhooks.md#delivery): a reader that
follows the cursor while both order replicas write sees every event exactly once, each order's
versions ascending; the feed's numbers cannot run ahead of a transaction that is still open;
deliveries claimed by both replicas' workers reach the receiver exactly once when nothing fails,
and at least once, in version order per order, across a SIGKILL of a replica."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter, defaultdict
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
import httpx
import orjson
import pytest

from common.db import Tx, open_database
from common.ids import new_id
from common.migrations import upgrade
from common.timestamps import now_us, timestamp_us
from order_service import events
from order_service.server import HISTORY
from order_service.webhooks.worker import PER_ENDPOINT
from shop.order.v1 import order_pb2
from tests import order_rows, postgres
from tests.harness import Cluster
from tests.integration.helpers import order_body
from tests.integration.webhooks import Json, read_feed
from tests.webhook_receiver import Arrival, Behaviour, Receiver, receiving

pytestmark = pytest.mark.postgres

WEBHOOK_ENV = {
    "WEBHOOK_ALLOW_PRIVATE_NETWORKS": "true",
    # Retried for long enough to ride out a replica's restart; an attempt times out in 2 s, and a
    # dead replica's claims run out 5 s after that.
    "WEBHOOK_RETRY_SCHEDULE_S": "0.5,1,1,2,2,2,2,2,2,2",
    "WEBHOOK_TIMEOUT_S": "2",
}
WRITERS = 6
ORDERS_PER_WRITER = 8


@pytest.fixture(scope="module")
def cluster(postgres_server: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    with postgres.cluster_on(postgres_server, tmp_path_factory.mktemp("webhooks-cluster"), env=WEBHOOK_ENV) as running:
        yield running


@pytest.fixture
async def clients(cluster: Cluster) -> AsyncIterator[list[httpx.AsyncClient]]:
    made = [httpx.AsyncClient(base_url=url, headers=cluster.headers, timeout=15) for url in cluster.urls]
    try:
        yield made
    finally:
        for client in made:
            await client.aclose()


async def post(client: httpx.AsyncClient, path: str, body: Json) -> Json:
    """A POST with an Idempotency-Key, retried until it is answered (a replica may be down), as
    the contract tells clients to."""
    key = f"scale-{uuid.uuid4()}"
    async with asyncio.timeout(60):
        while True:
            try:
                reply = await client.post(path, json=body, headers={"Idempotency-Key": key})
            except httpx.TransportError:
                reply = None
            if reply is not None and reply.status_code < 300:
                return reply.json()  # type: ignore[no-any-return]
            await asyncio.sleep(0.1)


async def write(clients: list[httpx.AsyncClient], writer: int, count: int) -> list[Json]:
    """`count` orders through alternating gateways (so both order replicas commit events); every
    third one also refunded, a version more."""
    placed = []
    for n in range(count):
        client = clients[(writer + n) % len(clients)]
        order = await post(client, "/v1/orders", order_body())
        if n % 3 == 0:
            order = await post(client, f"/v1/orders/{order['id']}/refund", {"amount": 100})
        placed.append(order)
    return placed


def versions_by_order(found: list[tuple[str, int]]) -> dict[str, list[int]]:
    by_order: dict[str, list[int]] = defaultdict(list)
    for order_id, version in found:
        by_order[order_id].append(version)
    return by_order


async def test_a_reader_following_the_cursor_sees_every_event_once_while_both_replicas_write(
    cluster: Cluster, clients: list[httpx.AsyncClient]
) -> None:
    _, start = await read_feed(clients[0], None)
    seen: list[tuple[str, int]] = []
    writing = asyncio.gather(*(write(clients, w, ORDERS_PER_WRITER) for w in range(WRITERS)))

    async def follow() -> None:
        """Reads as the writers write, through both gateways in turn, until a page read after the
        last write has come back empty."""
        cursor, turn = start, 0
        while True:
            turn += 1
            finished = writing.done()
            reply = await clients[turn % 2].get("/v1/events", params={"after": cursor, "page_size": 7})
            assert reply.status_code == 200, reply.text
            page = reply.json()
            seen.extend((e["data"]["order"]["id"], e["data"]["version"]) for e in page["events"])
            cursor = page["next_cursor"]
            if not page["events"]:
                if finished:
                    return
                await asyncio.sleep(0.02)  # a poll interval, as a client's

    reader = asyncio.create_task(follow())
    orders = [order for batch in await writing for order in batch]
    await reader
    expected = {(o["id"], v) for o in orders for v in range(1, o["version"] + 1)}
    assert len(orders) == WRITERS * ORDERS_PER_WRITER
    assert len(seen) == len(set(seen)), "an event was seen twice"
    assert set(seen) == expected
    for order_id, versions in versions_by_order(seen).items():
        assert versions == sorted(versions), order_id


async def test_an_event_cannot_be_numbered_before_an_earlier_one_commits(cluster: Cluster) -> None:
    """The outbox trap, made to happen: transaction A numbers an event and stays open; B, which
    started later, numbers another. B must wait for A (the account's head lock), so no reader can
    see B's number while A's may still appear."""
    await upgrade(HISTORY, cluster.order_database_url)
    db = open_database(cluster.order_database_url)
    await db.start()
    account = f"acct_{uuid.uuid4().hex[:8]}"
    feed = events.Feed(db)
    a_numbered, a_may_commit = asyncio.Event(), asyncio.Event()

    async def write(order: order_pb2.Order, wait: bool) -> None:
        await db.write(lambda tx: insert(tx, order, wait))

    async def insert(tx: Tx, order: order_pb2.Order, wait: bool) -> None:
        await order_rows.insert(tx, order, "pm_card_visa")
        if wait:  # (awaiting anything but `tx` is fine on PostgreSQL only: this test's)
            a_numbered.set()
            await a_may_commit.wait()

    first, second = _order(account), _order(account)
    try:
        writing_a = asyncio.create_task(write(first, True))
        await a_numbered.wait()
        writing_b = asyncio.create_task(write(second, False))
        await _until_waiting_for_a_lock(cluster.order_database_url)
        assert await feed.page(account, 0, 10) == []  # neither is visible, and B has no number yet
        assert not writing_b.done()
        a_may_commit.set()
        await asyncio.gather(writing_a, writing_b)
        page = await feed.page(account, 0, 10)
        assert [(item.seq, item.event.order.id) for item in page] == [(1, first.id), (2, second.id)]
    finally:
        a_may_commit.set()
        await db.close()


def _order(account_id: str) -> order_pb2.Order:
    now = timestamp_us(now_us())
    return order_pb2.Order(
        id=new_id("ord"), account_id=account_id, customer_id="cus_1", currency="EUR", amount=1, version=1,
        status=order_pb2.ORDER_STATUS_PENDING_PAYMENT, created_at=now, updated_at=now,
    )  # fmt: skip


async def _until_waiting_for_a_lock(url: str) -> None:
    conn = await asyncpg.connect(url)
    try:
        async with asyncio.timeout(10):
            while True:
                waiting = await conn.fetchval(
                    "SELECT count(*) FROM pg_stat_activity"
                    " WHERE wait_event_type = 'Lock' AND query LIKE '%event_heads%'"
                )
                if waiting:
                    return
                await asyncio.sleep(0.01)
    finally:
        await conn.close()


def _events(arrivals: list[Arrival]) -> list[tuple[str, int]]:
    found = []
    for arrival in arrivals:
        event = orjson.loads(arrival.body)
        found.append((event["data"]["order"]["id"], event["data"]["version"]))
    return found


async def _await_every_event(receiver: Receiver, path: str, expected: set[tuple[str, int]]) -> list[Arrival]:
    async with asyncio.timeout(120):
        while not expected <= set(_events(receiver.at(path))):
            await receiver.wait_for(path, len(receiver.at(path)) + 1, timeout=120)
    return receiver.at(path)


async def _delivery_statuses(client: httpx.AsyncClient, endpoint_id: str) -> Counter[str]:
    statuses: Counter[str] = Counter()
    token = ""
    while True:
        params: dict[str, Any] = {"page_size": 100, **({"page_token": token} if token else {})}
        page = (await client.get(f"/v1/webhook_endpoints/{endpoint_id}/deliveries", params=params)).json()
        statuses.update(d["status"] for d in page["deliveries"])
        token = page["next_page_token"]
        if not token:
            return statuses


async def _all_succeeded(client: httpx.AsyncClient, endpoint_id: str, count: int) -> None:
    """Until the delivery log says `count` deliveries, all succeeded (the log records a 2xx just
    after the receiver has answered it)."""
    async with asyncio.timeout(60):
        while True:
            if await _delivery_statuses(client, endpoint_id) == Counter({"succeeded": count}):
                return
            await asyncio.sleep(0.1)


@asynccontextmanager
async def _endpoint(client: httpx.AsyncClient, url: str) -> AsyncIterator[str]:
    """A webhook endpoint to `url` for the length of the block: its id."""
    hook = (await client.post("/v1/webhook_endpoints", json={"url": url})).json()
    try:
        yield hook["id"]
    finally:
        await client.delete(f"/v1/webhook_endpoints/{hook['id']}")


async def _delivered(
    client: httpx.AsyncClient, endpoint_id: str, receiver: Receiver, path: str, orders: list[Json]
) -> tuple[set[tuple[str, int]], list[tuple[str, int]]]:
    """Until every version of `orders` has reached `path` and the log says each delivery
    succeeded: the (order, version) pairs expected, and those that arrived, each time it did."""
    expected = {(o["id"], v) for o in orders for v in range(1, o["version"] + 1)}
    arrivals = await _await_every_event(receiver, path, expected)
    await _all_succeeded(client, endpoint_id, len(expected))
    return expected, _events(arrivals)


async def test_both_replicas_claim_deliveries_and_each_is_sent_once(
    cluster: Cluster, clients: list[httpx.AsyncClient]
) -> None:
    async with receiving() as receiver, _endpoint(clients[0], receiver.url("/race")) as hook:
        orders = [o for batch in await asyncio.gather(*(write(clients, w, 5) for w in range(4))) for o in batch]
        expected, found = await _delivered(clients[0], hook, receiver, "/race", orders)
    assert len(found) == len(set(found)) == len(expected), "a delivery was sent twice"
    for order_id, versions in versions_by_order(found).items():
        assert versions == sorted(versions), order_id


async def test_every_event_is_delivered_across_a_sigkill_of_a_replica(
    cluster: Cluster, clients: list[httpx.AsyncClient]
) -> None:
    held = asyncio.Event()
    async with receiving() as receiver:
        receiver.behaviours["/kill"] = Behaviour(hold=held)
        async with _endpoint(clients[0], receiver.url("/kill")) as hook:
            writing = asyncio.gather(*(write(clients, w, 6) for w in range(4)))
            # Answers held back: more attempts in flight than one replica may have to one endpoint
            # (worker.PER_ENDPOINT) means both replicas have some.
            await receiver.wait_for("/kill", PER_ENDPOINT + 1)
            victim = cluster.services["order_service.1"]
            victim.kill()  # its attempts in flight are never recorded; the writers go on
            held.set()
            victim.start()
            await asyncio.to_thread(cluster.wait_replica, "order_service.1")
            orders = [o for batch in await writing for o in batch]
            expected, found = await _delivered(clients[0], hook, receiver, "/kill", orders)
    assert set(found) == expected
    assert len(found) > len(expected)  # what the killed replica had in flight was sent again
    for order_id, versions in versions_by_order(found).items():
        assert versions == sorted(versions), order_id  # a resend repeats a version, never goes back
