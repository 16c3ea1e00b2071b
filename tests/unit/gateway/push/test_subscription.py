from __future__ import annotations

import asyncio

from gateway.push.subscription import QUEUE_LIMIT, End, Subscription
from gateway.push.updates import OrderUpdate
from shop.order.v1 import order_pb2
from tests.unit.gateway.push.fakes import S, order

URL = "http://gateway.test"


def update(version: int, status: order_pb2.OrderStatus.ValueType = S.ORDER_STATUS_PARTIALLY_REFUNDED) -> OrderUpdate:
    return OrderUpdate.encode(order(version, status), URL)


def subscription() -> tuple[Subscription, list[Subscription]]:
    left: list[Subscription] = []
    return Subscription("sse", left.append), left


async def test_offers_before_start_are_ignored_then_versions_come_in_order_once() -> None:
    sub, _ = subscription()
    sub.offer(update(2))  # not started: the hub has not given it its first versions yet
    sub.start([update(2), update(3)], after_version=1, ended=False)
    sub.offer(update(3))  # already had it
    sub.offer(update(4))
    assert [(await sub.get()).version for _ in range(3)] == [2, 3, 4]  # type: ignore[union-attr]


async def test_get_waits_for_an_offer() -> None:
    sub, _ = subscription()
    sub.start([], after_version=2, ended=False)
    waiting = asyncio.create_task(sub.get())
    await asyncio.sleep(0)
    assert not waiting.done()
    sub.offer(update(3))
    assert (await asyncio.wait_for(waiting, 1)).version == 3  # type: ignore[union-attr]


async def test_falling_behind_drops_the_client_and_leaves_the_topic() -> None:
    sub, left = subscription()
    sub.start([update(1)], after_version=0, ended=False)
    for version in range(2, QUEUE_LIMIT + 3):
        sub.offer(update(version))
    assert sub.end is End.SLOW
    assert left == [sub]
    assert await sub.get() is None


async def test_the_final_version_ends_the_subscription_after_it_is_taken() -> None:
    sub, left = subscription()
    sub.start([update(2)], after_version=1, ended=False)
    sub.offer(update(3, S.ORDER_STATUS_REFUNDED))
    assert left == []
    assert (await sub.get()).version == 2  # type: ignore[union-attr]
    assert (await sub.get()).final  # type: ignore[union-attr]
    assert sub.end is End.FINAL
    assert left == [sub]
    assert await sub.get() is None


async def test_nothing_to_send_and_nothing_to_come_is_finished_at_once() -> None:
    sub, left = subscription()
    sub.start([], after_version=3, ended=True)
    assert sub.finished
    assert left == [sub]


async def test_close_wakes_a_waiting_get_and_is_idempotent() -> None:
    sub, left = subscription()
    sub.start([], after_version=1, ended=False)
    waiting = asyncio.create_task(sub.get())
    await asyncio.sleep(0)
    sub.close()
    sub.close()
    assert await asyncio.wait_for(waiting, 1) is None
    assert sub.end is End.CLOSED
    assert left == [sub]


async def test_get_latest_skips_to_the_newest_waiting_version() -> None:
    sub, _ = subscription()
    sub.start([update(2), update(3), update(4)], after_version=1, ended=False)
    assert (await sub.get_latest()).version == 4  # type: ignore[union-attr]
