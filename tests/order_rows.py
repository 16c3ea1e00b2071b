"""Orders written straight into the order service's database by the store's own transactions,
for tests of what hangs off an order's writes (the events feed, webhooks) without a flow."""

from __future__ import annotations

from common.db import Tx
from common.timestamps import now_us
from order_service import store
from order_service.changes import LocalChanges
from shop.order.v1 import order_pb2 as pb


class _Quiet:
    """Stands for the store: its changes announce to nobody (no watcher in these tests)."""

    changes = LocalChanges()


_QUIET = _Quiet()


async def insert(tx: Tx, order: pb.Order, payment_method: str) -> None:
    """The order as `OrderStore.add_pending` writes it step by step (its event, its check), inside `tx`."""
    add_pending = store.OrderStore._add_pending.__wrapped__  # type: ignore[attr-defined]
    await add_pending(_QUIET, tx, order, payment_method, now_us())


async def locked(tx: Tx, order_id: str) -> pb.Order | None:
    row = await tx.fetchrow(store.GET_FOR_UPDATE, order_id)
    return None if row is None else pb.Order.FromString(row["doc"])


async def save(tx: Tx, order: pb.Order) -> None:
    """A new version of the order (the caller bumped `version`) and its event, inside `tx`."""
    await store.save_version(tx, order)
