"""Finishes what a crash, an outage or a lost answer left open — on every replica at once.

Its work is the durable checks (store.py, `order_checks`): a charge whose answer never came, a
confirm/cancel/refund whose answer may be lost, a confirmation window that ends. Each round
claims the due checks (`FOR UPDATE SKIP LOCKED`, pushing each back by a lease), so that two
replicas never work on one check; and what a check does is safe to do twice anyway — a charge is
repeated with the same key, a payment is read and applied only if newer — so an order left
`pending_payment` by a dead replica is finished exactly once, by whichever replica gets to it.
Hourly, REST idempotency keys older than 24 h are forgotten.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict

from common import tracing
from common.background import BackgroundLoop
from common.errors import ServiceError
from common.timestamps import now_us
from order_service.metrics import RECONCILER_BACKLOG, RECONCILER_CHECKS, check_kind
from order_service.orders import Orders

log = logging.getLogger(__name__)

_PURGE_EVERY = 3600  # rounds
# Checks claimed per round, and worked on at once (one by one, a backlog after an outage
# waited for the sum of all its charges).
_CLAIM_LIMIT = 64
_CONCURRENT = 16


class Reconciler(BackgroundLoop):
    task_name = "reconciler"

    def __init__(self, orders: Orders, interval_s: float, deadline_s: float) -> None:
        self.orders = orders
        self.interval_s = interval_s
        self.deadline_s = deadline_s

    async def run_once(self, at_us: int | None = None) -> int:
        """One round, for the checks due by `at_us` (now); returns how many it claimed."""
        lease_us = round((self.deadline_s + 1) * 1_000_000)
        claimed = await self.orders.store.claim_checks(lease_us, _CLAIM_LIMIT, now_us() if at_us is None else at_us)
        by_order: dict[str, list[str]] = defaultdict(list)
        for order_id, check in claimed:
            by_order[order_id].append(check)
        limit = asyncio.Semaphore(_CONCURRENT)
        await asyncio.gather(*(self._reconcile(order_id, checks, limit) for order_id, checks in by_order.items()))
        return len(claimed)

    async def _reconcile(self, order_id: str, checks: list[str], limit: asyncio.Semaphore) -> None:
        kinds = sorted({check_kind(check) for check in checks})
        # A trace of its own per order (with tracing on): no request is behind this work.
        async with limit:
            with tracing.span("reconcile order", {"order_id": order_id, "checks": kinds}):
                outcome = "done"
                try:
                    await self.orders.reconcile(order_id, checks, self.deadline_s)
                except ServiceError as exc:
                    # The payment service is still down or slow: again soon.
                    outcome = "retry"
                    log.warning("could not reconcile order", extra={"order_id": order_id, "error": exc.message})
                    await self.orders.retry_checks_soon(order_id, checks)
        for check in checks:
            RECONCILER_CHECKS.labels(check_kind(check), outcome).inc()

    async def _run(self) -> None:
        rounds = 0
        while True:
            try:
                RECONCILER_BACKLOG.set(await self.orders.store.checks_backlog())
                worked = await self.run_once()
                if rounds % _PURGE_EVERY == 0:
                    await self.orders.store.purge_keys()
            except ServiceError as exc:  # the database is away: the next round will do
                log.warning("reconciler round failed", extra={"error": exc.message})
                worked = 0
            except Exception:
                log.exception("reconciler round failed")
                worked = 0
            rounds += 1
            if worked < _CLAIM_LIMIT:  # a full round: more may be due, go on at once
                await asyncio.sleep(self.interval_s)
