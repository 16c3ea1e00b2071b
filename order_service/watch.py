"""WatchOrder: replay an order's versions from the durable event log, then follow new ones.

What a watcher sends always comes from the log — the change hints (changes.py) only say "read
again" — so it never misses a version or sends one twice, whichever replica committed it, and a
watcher that resumes after a restart (of anything) picks up exactly where it left off.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from common.caller import INTERNAL, CallerScope
from common.errors import NotFound, OutOfRange, Unavailable
from common.order_status import FINAL
from order_service.store import OrderStore
from shop.order.v1 import order_pb2 as pb

EVENT_TYPE = "order.updated"


async def watch_order(
    store: OrderStore,
    order_id: str,
    after_version: int | None,
    caller: CallerScope = INTERNAL,
) -> AsyncIterator[pb.OrderEvent]:
    """`after_version` None: the current version, then each new one. v ≥ 0: every version after
    v (0 replays the whole history). Ahead of the current version: OUT_OF_RANGE. An order outside
    the caller's scope: NOT_FOUND (its owner and client secret never change, so one check is enough)."""
    changes = store.changes
    with changes.subscribe(order_id) as watcher:
        current = await store.get(order_id)
        if current is None or not caller.may_see(current.account_id, current.client_secret):
            raise NotFound(f"order {order_id} not found")
        if current.status in FINAL and after_version is not None and after_version >= current.version:
            return  # the watcher has seen the end already
        if after_version is not None and after_version > current.version:
            raise OutOfRange(
                f"order {order_id} is at version {current.version}; there is no version {after_version} yet",
                violations=[("after_version", f"must be ≤ {current.version}")],
            )
        watcher.version = current.version - 1 if after_version is None else after_version
        while True:
            if changes.closed:
                raise Unavailable("the order service is shutting down; watch again with after_version")
            watcher.changed.clear()  # before reading, so that a commit during the read wakes us again
            for order in await store.events_after(order_id, watcher.version):
                yield pb.OrderEvent(type=EVENT_TYPE, version=order.version, order=order)
                watcher.version = order.version
                if order.status in FINAL:
                    return
            await watcher.changed.wait()
