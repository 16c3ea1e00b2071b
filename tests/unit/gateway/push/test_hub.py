from __future__ import annotations

import asyncio
from typing import Any

import grpc
import pytest

from common.caller import INTERNAL, CallerScope
from gateway.push.hub import Hub, OrderNotFound, PushUnavailable, ResumeAhead
from gateway.push.subscription import QUEUE_LIMIT, End, Subscription
from shop.order.v1 import order_pb2
from tests.unit.gateway.push.fakes import FakeCall, FakeOrders, S, order

URL = "http://gateway.test"


def make_hub(join_timeout_s: float = 2) -> tuple[Hub, FakeOrders]:
    orders = FakeOrders()
    return Hub(orders, URL, join_timeout_s), orders  # type: ignore[arg-type]


async def first_client(
    hub: Hub, orders: FakeOrders, *versions: order_pb2.Order, channel: str = "sse"
) -> tuple[FakeCall, Subscription]:
    """The first client of `ord_1`: the stream its arrival opens, on which the order service
    sends `versions`, and its subscription."""
    joining = asyncio.create_task(hub.subscribe("ord_1", None, INTERNAL, channel=channel, replay=True))
    call = await orders.next_call(1)
    call.push(*versions)
    return call, await joining


async def second_client_resuming(
    hub: Hub, orders: FakeOrders, after_version: int, *missing: order_pb2.Order, channel: str = "sse"
) -> tuple[FakeCall, Subscription]:
    """A second client of `ord_1`, resuming after a version the topic no longer holds: the short
    replay call its arrival opens (after exactly that version), on which the order service sends
    `missing`, and its subscription."""
    joining = asyncio.create_task(hub.subscribe("ord_1", after_version, INTERNAL, channel=channel, replay=True))
    replay = await orders.next_call(2)
    assert replay.request.HasField("after_version")
    assert replay.request.after_version == after_version
    replay.push(*missing)
    return replay, await joining


async def get(subscription: Subscription) -> Any:
    async with asyncio.timeout(2):
        return await subscription.get()


async def cancelled(call: FakeCall) -> bool:
    """Whether the hub cancels `call` once its task has run (a few turns of the loop)."""
    for _ in range(10):
        if call.cancelled:
            return True
        await asyncio.sleep(0)
    return False


async def test_clients_of_one_order_share_one_stream_and_each_version_is_encoded_once() -> None:
    hub, orders = make_hub()
    first = asyncio.create_task(hub.subscribe("ord_1", None, INTERNAL, channel="sse", replay=True))
    call = await orders.next_call(1)
    assert not call.request.HasField("after_version")
    assert call.kwargs == {"wait_for_ready": True}
    call.push(order(2))
    subscriptions = [await first]
    subscriptions += [await hub.subscribe("ord_1", None, INTERNAL, channel="websocket", replay=True) for _ in range(3)]
    assert len(orders.calls) == 1

    snapshots = [await get(s) for s in subscriptions]
    assert {s.version for s in snapshots} == {2}
    call.push(order(3, S.ORDER_STATUS_PAID))
    updates = [await get(s) for s in subscriptions]
    assert [u.status for u in updates] == ["paid"] * 4
    assert all(u is updates[0] for u in updates)  # one object, one encoding, for every client
    assert updates[0].sse.startswith(b"id: 3\nevent: order.updated\ndata: {")
    assert updates[0].ws.startswith('{"type":"order.updated","version":3,"order":{')
    for subscription in subscriptions:
        subscription.close()
    assert await cancelled(call)  # the last client left
    await hub.close()


async def test_each_client_is_checked_against_the_order_before_it_joins_the_shared_stream() -> None:
    hub, orders = make_hub()
    owned = order(2)
    owned.account_id, owned.client_secret = "acct_a", "ord_1_secret_right-one-0123456789"
    account = CallerScope(account_id="acct_a")
    joining = asyncio.create_task(hub.subscribe("ord_1", None, account, channel="sse", replay=True))
    call = await orders.next_call(1)
    call.push(owned)
    owner = await joining
    for stranger in (CallerScope(account_id="acct_b"), CallerScope(client_secret="ord_1_secret_wrong-one-0123456789")):
        with pytest.raises(OrderNotFound):
            await hub.subscribe("ord_1", None, stranger, channel="websocket", replay=True)
    browser_scope = CallerScope(client_secret=owned.client_secret)
    browser = await hub.subscribe("ord_1", None, browser_scope, channel="sse", replay=True)
    assert len(orders.calls) == 1  # the refusals cost no stream; the browser shares the owner's
    assert (await get(owner)).version == 2
    assert (await get(browser)).version == 2
    owner.close()
    browser.close()
    await hub.close()


async def test_a_client_that_falls_behind_is_dropped_and_the_others_get_everything() -> None:
    hub, orders = make_hub()
    call, reader = await first_client(hub, orders, order(1, S.ORDER_STATUS_PAID))
    stuck = await hub.subscribe("ord_1", None, INTERNAL, channel="sse", replay=True)
    assert (await get(reader)).version == 1

    seen = []
    for version in range(2, QUEUE_LIMIT + 4):
        call.push(order(version, S.ORDER_STATUS_PARTIALLY_REFUNDED))
        seen.append((await get(reader)).version)
    assert seen == list(range(2, QUEUE_LIMIT + 4))
    assert stuck.end is End.SLOW
    assert await get(stuck) is None  # nothing queued survives: it resumes from what it has
    assert not await cancelled(call)  # the reader still follows
    reader.close()
    await hub.close()


async def test_a_broken_stream_is_reopened_after_the_last_version_seen_without_repeats() -> None:
    hub, orders = make_hub()
    first, subscription = await first_client(hub, orders, order(2))
    assert (await get(subscription)).version == 2

    first.fail(grpc.StatusCode.UNAVAILABLE)
    second = await orders.next_call(2)
    assert second.request.after_version == 2
    second.push(order(2), order(3, S.ORDER_STATUS_PAID))  # a repeat is skipped
    assert (await get(subscription)).version == 3
    second.end()  # ended without a final status: opened again
    third = await orders.next_call(3)
    assert third.request.after_version == 3
    subscription.close()
    await hub.close()


async def test_a_late_client_resuming_from_before_the_topic_gets_the_missing_versions_replayed() -> None:
    hub, orders = make_hub()
    shared, first = await first_client(hub, orders, order(5, S.ORDER_STATUS_PARTIALLY_REFUNDED))

    missing = order(3, S.ORDER_STATUS_PAID), order(4, S.ORDER_STATUS_PARTIALLY_REFUNDED)
    replay, late = await second_client_resuming(hub, orders, 2, *missing)
    assert await cancelled(replay)  # a short call: it ends once the topic's versions are reached
    shared.push(order(6, S.ORDER_STATUS_REFUNDED))
    assert [(await get(late)).version for _ in range(4)] == [3, 4, 5, 6]
    assert await get(late) is None
    assert late.end is End.FINAL
    assert [(await get(first)).version for _ in range(2)] == [5, 6]
    await hub.close()


async def test_after_the_final_version_nothing_more_comes() -> None:
    hub, orders = make_hub()
    joining = asyncio.create_task(hub.subscribe("ord_1", None, INTERNAL, channel="sse", replay=True))
    call = await orders.next_call(1)
    call.push(order(3, S.ORDER_STATUS_PAYMENT_FAILED))
    call.end()
    first = await joining
    assert (await get(first)).status == "payment_failed"
    assert await get(first) is None
    assert first.end is End.FINAL
    assert await cancelled(call)  # its last client is done

    # A reconnect at the final version: the order service sends it again and ends.
    reconnecting = asyncio.create_task(hub.subscribe("ord_1", 3, INTERNAL, channel="sse", replay=True))
    again = await orders.next_call(2)
    again.push(order(3, S.ORDER_STATUS_PAYMENT_FAILED))
    again.end()
    past = await reconnecting
    assert past.finished
    assert past.end is End.FINAL
    await hub.close()


async def test_long_polling_gets_only_the_newest_version() -> None:
    hub, orders = make_hub()
    joining = asyncio.create_task(hub.subscribe("ord_1", 1, INTERNAL, channel="long_poll", replay=False))
    call = await orders.next_call(1)
    call.push(order(4, S.ORDER_STATUS_PARTIALLY_REFUNDED))
    poll = await joining
    assert len(orders.calls) == 1  # no replay for a poll
    assert (await poll.get_latest()).version == 4  # type: ignore[union-attr]
    same = await hub.subscribe("ord_1", 4, INTERNAL, channel="long_poll", replay=False)
    call.push(order(5, S.ORDER_STATUS_PARTIALLY_REFUNDED), order(6, S.ORDER_STATUS_PARTIALLY_REFUNDED))
    await asyncio.sleep(0)  # let both versions arrive
    assert (await same.get_latest()).version == 6  # type: ignore[union-attr]
    await hub.close()


async def test_an_unknown_order_and_an_unreachable_service() -> None:
    # The first call's NOT_FOUND must come within the join timeout: 1 s, not 0.2 s, so that a
    # descheduled test process on a busy machine does not turn it into "unavailable".
    hub, orders = make_hub(join_timeout_s=1)
    joining = asyncio.create_task(hub.subscribe("ord_x", None, INTERNAL, channel="sse", replay=True))
    (await orders.next_call(1)).fail(grpc.StatusCode.NOT_FOUND)
    with pytest.raises(OrderNotFound):
        await joining
    with pytest.raises(PushUnavailable):  # the fake never answers the second call
        await hub.subscribe("ord_x", None, INTERNAL, channel="sse", replay=True)
    assert await cancelled(orders.calls[1])
    await hub.close()


async def test_drain_ends_every_subscription_and_refuses_new_ones() -> None:
    hub, orders = make_hub()
    call, subscription = await first_client(hub, orders, order(2), channel="websocket")
    hub.drain()
    assert subscription.end is End.SHUTDOWN
    assert await cancelled(call)
    with pytest.raises(PushUnavailable):
        await hub.subscribe("ord_1", None, INTERNAL, channel="sse", replay=True)
    await hub.close()


async def test_resuming_after_version_0_replays_the_whole_history() -> None:
    hub, orders = make_hub()
    await first_client(hub, orders, order(3, S.ORDER_STATUS_PAID))
    missing = order(1, S.ORDER_STATUS_PENDING_PAYMENT), order(2, S.ORDER_STATUS_REQUIRES_ACTION)
    _, everything = await second_client_resuming(hub, orders, 0, *missing, channel="websocket")
    assert [(await get(everything)).version for _ in range(3)] == [1, 2, 3]
    await hub.close()


async def test_a_resume_point_ahead_of_the_order_is_refused_but_a_lagging_topic_is_waited_for() -> None:
    hub, orders = make_hub()
    shared, _ = await first_client(hub, orders, order(3, S.ORDER_STATUS_PAID))
    orders.current = order(3, S.ORDER_STATUS_PAID)
    with pytest.raises(ResumeAhead) as ahead:
        await hub.subscribe("ord_1", 9, INTERNAL, channel="sse", replay=True)
    assert ahead.value.current == 3
    # The client saw version 4 elsewhere (another gateway) before this topic heard of it.
    orders.current = order(4, S.ORDER_STATUS_PARTIALLY_REFUNDED)
    ahead_of_topic = await hub.subscribe("ord_1", 4, INTERNAL, channel="sse", replay=True)
    shared.push(order(4, S.ORDER_STATUS_PARTIALLY_REFUNDED), order(5, S.ORDER_STATUS_REFUNDED))
    assert (await get(ahead_of_topic)).version == 5
    await hub.close()
