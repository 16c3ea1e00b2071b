"""WatchOrder: replay an order's versions from the durable event log, then follow new ones.

The bus only says "order X changed" to watchers in this process; what they send always comes
from the log, so a watcher can never miss a version or see one twice, and a watcher that
resumes after a restart (of anything) picks up exactly where it left off.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager

from common.errors import NotFound, Unavailable
from order_service.domain import FINAL
from order_service.store import OrderStore
from shop.order.v1 import order_pb2 as pb

EVENT_TYPE = "order.updated"


class OrderBus:
    def __init__(self) -> None:
        self._watchers: dict[str, set[asyncio.Event]] = defaultdict(set)
        self.closed = False

    def close(self) -> None:
        """At shutdown, before the grace period: end every watch. A watch never finishes by
        itself, so an open one would otherwise hold the shutdown for the whole grace period."""
        self.closed = True
        for events in self._watchers.values():
            for event in events:
                event.set()

    def publish(self, order_id: str) -> None:
        """Called after a change is committed: wake every watcher of the order."""
        for event in self._watchers.get(order_id, ()):
            event.set()

    @contextmanager
    def subscribe(self, order_id: str) -> Iterator[asyncio.Event]:
        event = asyncio.Event()
        self._watchers[order_id].add(event)
        try:
            yield event
        finally:
            self._watchers[order_id].discard(event)
            if not self._watchers[order_id]:
                del self._watchers[order_id]


async def watch_order(
    store: OrderStore, bus: OrderBus, order_id: str, after_version: int
) -> AsyncIterator[pb.OrderEvent]:
    """`after_version` 0: the current version, then each new one. n > 0: every version after n."""
    with bus.subscribe(order_id) as changed:
        current = await store.get(order_id)
        if current is None:
            raise NotFound(f"order {order_id} not found")
        if current.status in FINAL and after_version >= current.version:
            return  # the watcher has seen the end already
        last = after_version if after_version > 0 else current.version - 1
        while True:
            if bus.closed:
                raise Unavailable("the order service is shutting down; watch again with after_version")
            changed.clear()  # before reading, so that a commit during the read wakes us again
            for order in await store.events_after(order_id, last):
                yield pb.OrderEvent(type=EVENT_TYPE, version=order.version, order=order)
                last = order.version
                if order.status in FINAL:
                    return
            await changed.wait()
