"""Webhook deliveries in the database, on SQLite (order_service/webhooks/deliveries.py): queued
with the event for each matching endpoint, one version at a time per order and endpoint,
claimed with a lease, finished only under their claim, retried on the schedule, failed after it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from common.db import Database
from order_service.server import HISTORY
from order_service.webhooks import deliveries, endpoints
from order_service.webhooks.deliveries import Claimed, Outcome
from shop.order.v1 import events_pb2 as pb
from tests.unit.databases import migrated
from tests.unit.order_service.test_events import new_order, next_version

ACCOUNT = "acct_a"
LEASE_US = 60_000_000
DELIVERED = Outcome(True, 204)
REFUSED = Outcome(False, 500, "the endpoint answered HTTP 500")


@pytest.fixture
async def db(tmp_path: Path, database_server: str | None) -> AsyncIterator[Database]:
    async with migrated(HISTORY, tmp_path, database_server) as database:
        yield database


async def endpoint(db: Database, events: tuple[str, ...] = ()) -> str:
    store = endpoints.Endpoints(db, allow_private=True, secret_overlap_s=60)
    request = pb.CreateWebhookEndpointRequest(url="http://127.0.0.1:9/hook", enabled_events=events)
    created, _ = await store.create(ACCOUNT, request)
    return created.id


async def claim(db: Database, per_endpoint: int = 10, busy: tuple[str, ...] = ()) -> list[Claimed]:
    return await deliveries.claim(db, 100, per_endpoint, busy, LEASE_US)


async def statuses(db: Database, endpoint_id: str) -> list[tuple[int, str]]:
    rows = await deliveries.log_page(db, endpoint_id, 100, None, None)
    return sorted((row["version"], row["status"]) for row in rows)


async def test_each_event_is_queued_for_each_endpoint_that_wants_it(db: Database) -> None:
    everything, updates = await endpoint(db), await endpoint(db, ("order.updated",))
    order = await new_order(db, ACCOUNT)
    await new_order(db, "acct_other")  # another account's endpoints only
    claimed = await claim(db)
    assert sorted((c.endpoint_id, c.order_id, c.version) for c in claimed) == sorted(
        [(everything, order.id, 1), (updates, order.id, 1)]
    )
    assert await claim(db) == []  # claimed: leased to this claim


async def test_an_endpoint_gets_the_events_after_its_creation_only(db: Database) -> None:
    order = await new_order(db, ACCOUNT)
    late = await endpoint(db)
    await next_version(db, order.id)
    assert [(c.endpoint_id, c.version) for c in await claim(db)] == [(late, 2)]


async def test_versions_of_one_order_go_one_at_a_time_per_endpoint(db: Database) -> None:
    hook = await endpoint(db)
    order = await new_order(db, ACCOUNT)
    await next_version(db, order.id)
    await next_version(db, order.id)
    (first,) = await claim(db)
    assert first.version == 1  # 2 and 3 wait for it
    assert await deliveries.finish(db, first, DELIVERED, (1.0,)) == deliveries.SUCCEEDED
    (second,) = await claim(db)
    assert second.version == 2
    # Not delivered: its retry is due later, and version 3 still waits.
    assert await deliveries.finish(db, second, REFUSED, (3600.0,)) == deliveries.PENDING
    assert await claim(db) == []
    assert await statuses(db, hook) == [(1, "succeeded"), (2, "pending"), (3, "pending")]


async def test_a_final_failure_lets_the_next_version_go(db: Database) -> None:
    hook = await endpoint(db)
    order = await new_order(db, ACCOUNT)
    await next_version(db, order.id)
    (first,) = await claim(db)
    # The schedule has one retry: attempt 1 fails (retry due at once), attempt 2 fails for good.
    assert await deliveries.finish(db, first, REFUSED, (0.000001,)) == deliveries.PENDING
    (again,) = await claim(db)
    assert (again.version, again.attempts) == (1, 1)
    assert await deliveries.finish(db, again, REFUSED, (0.000001,)) == deliveries.FAILED
    (second,) = await claim(db)
    assert second.version == 2
    rows = await deliveries.log_page(db, hook, 100, None, None)
    failed = next(row for row in rows if row["version"] == 1)
    assert (failed["attempts"], failed["last_status_code"], failed["next_attempt_us"]) == (2, 500, None)
    assert failed["last_error"] == "the endpoint answered HTTP 500"


async def test_an_outcome_counts_only_under_its_claim(db: Database) -> None:
    await endpoint(db)
    await new_order(db, ACCOUNT)
    (first,) = await deliveries.claim(db, 10, 10, (), -1)  # a lease that has run out at once
    (taken_over,) = await claim(db)
    assert taken_over.seq == first.seq
    assert await deliveries.finish(db, first, DELIVERED, (1.0,)) is None
    assert await deliveries.finish(db, taken_over, DELIVERED, (1.0,)) == deliveries.SUCCEEDED


async def test_claims_leave_busy_endpoints_alone_and_take_few_of_one_endpoint(db: Database) -> None:
    busy, free = await endpoint(db), await endpoint(db)
    for _ in range(5):
        await new_order(db, ACCOUNT)
    claimed = await claim(db, per_endpoint=2, busy=(busy,))
    assert [c.endpoint_id for c in claimed] == [free, free]


async def test_a_deleted_endpoint_fails_what_is_pending(db: Database) -> None:
    hook = await endpoint(db)
    order = await new_order(db, ACCOUNT)
    await next_version(db, order.id)
    store = endpoints.Endpoints(db, allow_private=True, secret_overlap_s=60)
    deleted = await store.delete(ACCOUNT, hook)
    assert deleted.status == pb.WEBHOOK_ENDPOINT_STATUS_DELETED
    assert await statuses(db, hook) == [(1, "failed"), (2, "failed")]
    await next_version(db, order.id)
    assert await claim(db) == []
    assert await statuses(db, hook) == [(1, "failed"), (2, "failed")]


def test_the_retry_schedule_with_jitter() -> None:
    schedule = (5.0, 300.0)
    for attempt, wait_s in ((1, 5.0), (2, 300.0)):
        status, at = deliveries.next_state(attempt, REFUSED, schedule, 0)
        assert status == deliveries.PENDING
        assert at is not None
        assert wait_s * 0.9 * 1e6 <= at <= wait_s * 1.1 * 1e6
    assert deliveries.next_state(3, REFUSED, schedule, 0) == (deliveries.FAILED, None)
    assert deliveries.next_state(1, DELIVERED, schedule, 0) == (deliveries.SUCCEEDED, None)
