"""One keep-alive clock for all SSE streams (gateway/push/heartbeat.py) and the beats a
subscription turns into keep-alives (`Subscription.next_event`)."""

from __future__ import annotations

import asyncio

from gateway.push.heartbeat import Heartbeat
from gateway.push.subscription import KEEP_ALIVE, Subscription
from gateway.push.updates import OrderUpdate
from tests.unit.gateway.push.fakes import S, order


def started() -> Subscription:
    subscription = Subscription("sse", lambda _: None)
    subscription.start([], after_version=1, ended=False)
    return subscription


async def test_a_joined_subscription_is_beaten_and_a_left_one_is_not() -> None:
    heartbeat = Heartbeat(0.16)
    beaten, left = started(), started()
    heartbeat.join(beaten)
    heartbeat.leave(left, heartbeat.join(left))
    try:
        assert await asyncio.wait_for(beaten.next_event(), 5) is KEEP_ALIVE
        assert await asyncio.wait_for(beaten.next_event(), 5) is KEEP_ALIVE  # and again, each period
        waiting = asyncio.create_task(left.next_event())
        await asyncio.sleep(0.4)  # over two periods: a beat would have come by now
        assert not waiting.done()
        waiting.cancel()
    finally:
        heartbeat.close()


async def test_a_version_that_goes_out_stands_for_the_keep_alive() -> None:
    subscription = started()
    subscription.beat()
    subscription.offer(OrderUpdate.encode(order(2, S.ORDER_STATUS_PAID), "http://gateway.test"))
    update = await subscription.next_event()
    assert isinstance(update, OrderUpdate)
    assert update.version == 2
    waiting = asyncio.create_task(subscription.next_event())
    await asyncio.sleep(0)
    assert not waiting.done()  # no keep-alive owed
    subscription.beat()
    assert await asyncio.wait_for(waiting, 5) is KEEP_ALIVE
