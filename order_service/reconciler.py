"""Finishes what a crash or an outage left unfinished, at start and then periodically:

- orders left in `pending_payment` (the payment service was down, or this process died between
  storing the order and recording the charge) are charged again with the same key — the payment
  service answers a repeat with the first payment, so nothing is charged twice;
- orders in `requires_action` whose confirmation window has passed are refreshed from the
  payment service, which fails the payment as `expired`; the order becomes `payment_failed`;
- orders whose confirmation or cancellation got no answer (`Orders.in_doubt`), and at start
  every order in `requires_action`, are refreshed from the payment service, so that a payment
  confirmed just before a crash does not leave its order waiting until the window ends;
- REST idempotency keys older than 24 h are forgotten.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from common.errors import ServiceError
from common.timestamps import utcnow
from order_service.orders import Orders

log = logging.getLogger(__name__)

_PURGE_EVERY = 3600  # rounds
_CONCURRENT_CHARGES = 16


class Reconciler:
    def __init__(self, orders: Orders, interval_s: float, deadline_s: float) -> None:
        self.orders = orders
        self.interval_s = interval_s
        self.deadline_s = deadline_s
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="reconciler")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def run_once(self) -> None:
        store = self.orders.store
        await self._each(
            "finish pending order",
            await store.ids_with_status("pending_payment"),
            lambda order_id: self.orders.finish_pending(order_id, self.deadline_s),
        )
        for order_id in await store.ids_expired(utcnow()):
            await self._attempt("expire order", order_id, self.orders.refresh_payment(order_id, self.deadline_s))
        # Confirmations and cancellations whose answer was lost: ask the payment service.
        await self._each("refresh order", sorted(self.orders.in_doubt), self._refresh)

    async def _refresh(self, order_id: str) -> None:
        await self.orders.refresh_payment(order_id, self.deadline_s)
        self.orders.in_doubt.discard(order_id)

    async def _each(self, what: str, order_ids: list[str], work: Callable[[str], Awaitable[object]]) -> None:
        # Several at a time: one by one, a round took as long as all its charges together, so a
        # slow payment service or the backlog of an outage kept orders waiting for minutes.
        limit = asyncio.Semaphore(_CONCURRENT_CHARGES)

        async def one(order_id: str) -> None:
            async with limit:
                await self._attempt(what, order_id, work(order_id))

        for outcome in await asyncio.gather(*(one(order_id) for order_id in order_ids), return_exceptions=True):
            if isinstance(outcome, BaseException):
                raise outcome

    async def _attempt(self, what: str, order_id: str, work: object) -> None:
        try:
            await work  # type: ignore[misc]
        except ServiceError as exc:
            # The payment service is still down or slow: try again next round.
            log.warning(f"could not {what}", extra={"order_id": order_id, "error": exc.message})

    async def _run(self) -> None:
        rounds = 0
        while True:
            try:
                if rounds == 0:
                    # An earlier run may have died between a payment's confirmation (or
                    # cancellation) and its record here: check each order that waits for one.
                    self.orders.in_doubt.update(await self.orders.store.ids_with_status("requires_action"))
                await self.run_once()
                if rounds % _PURGE_EVERY == 0:
                    await self.orders.store.forget_old_keys()
            except Exception:
                log.exception("reconciler round failed")
            rounds += 1
            await asyncio.sleep(self.interval_s)
