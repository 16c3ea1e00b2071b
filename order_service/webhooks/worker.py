"""The delivery worker: on every replica, claims due deliveries through the database and attempts
them, each in a task of its own.

A slow or dead endpoint holds up nothing else: this replica sends at most PER_ENDPOINT attempts at
once to one endpoint (a claim may bring a few more, which wait for a slot), and while it holds
that many of an endpoint's deliveries it claims no more of them — they do not fill the claims
meant for other endpoints; MAX_IN_FLIGHT bounds the whole. An endpoint that times out costs its own slots for
WEBHOOK_TIMEOUT_S, no one else's. A commit on this replica wakes the worker at once; deliveries
committed by other replicas, retries that fall due and leases that run out are found by a look
every POLL_S.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections import Counter

import orjson

from common.background import BackgroundLoop
from common.db import Database
from common.documents import event_json
from common.errors import ServiceError
from common.timestamps import now_us
from common.webhook_signatures import signature_header
from order_service.events import to_event
from order_service.metrics import WEBHOOK_ATTEMPTS
from order_service.webhooks import deliveries
from order_service.webhooks.deliveries import Claimed, Outcome
from order_service.webhooks.endpoints import ENABLED, signing_secrets
from order_service.webhooks.sender import Sender
from order_service.webhooks.settings import WebhookSettings

log = logging.getLogger(__name__)

MAX_IN_FLIGHT = 64
PER_ENDPOINT = 4
POLL_S = 0.5
# How long a claim holds a delivery before another replica may take it (this one having died, or
# lost its database mid-attempt): a wait for a slot and the attempt, each at most the timeout.
LEASE_MARGIN_S = 5.0
# At shutdown, attempts in flight may finish for this long; cut off, they are attempted again
# by whichever replica claims them once their lease has run out.
STOP_GRACE_S = 5.0


class DeliveryWorker(BackgroundLoop):
    task_name = "webhook deliveries"

    def __init__(self, db: Database, settings: WebhookSettings) -> None:
        self.db = db
        self.settings = settings
        self.sender = Sender(settings.webhook_allow_private_networks, settings.webhook_timeout_s, PER_ENDPOINT)
        self.lease_us = round((2 * settings.webhook_timeout_s + LEASE_MARGIN_S) * 1_000_000)
        # Per endpoint: the deliveries this replica holds, and the slots they send through.
        self._in_flight: Counter[str] = Counter()
        self._slots: dict[str, asyncio.Semaphore] = {}
        self._attempts: set[asyncio.Task[None]] = set()
        self._slot_free = asyncio.Event()
        self._claims_failing = False

    async def stop(self) -> None:
        await super().stop()
        if self._attempts:
            await asyncio.wait(self._attempts, timeout=STOP_GRACE_S)
            for task in self._attempts:
                task.cancel()
            await asyncio.gather(*self._attempts, return_exceptions=True)
        await self.sender.close()

    async def _run(self) -> None:
        with deliveries.QUEUED.subscribe() as queued:
            while True:
                queued.clear()
                self._slot_free.clear()
                claimed = await self._claim()
                if claimed:
                    continue  # more may be due: claim again while there is room
                waits = [asyncio.ensure_future(queued.wait()), asyncio.ensure_future(self._slot_free.wait())]
                try:
                    await asyncio.wait(waits, timeout=POLL_S, return_when=asyncio.FIRST_COMPLETED)
                finally:
                    for waiting in waits:
                        waiting.cancel()

    async def _claim(self) -> int:
        room = MAX_IN_FLIGHT - len(self._attempts)
        if room <= 0:
            return 0
        busy = sorted(endpoint for endpoint, count in self._in_flight.items() if count >= PER_ENDPOINT)
        try:
            claimed = await deliveries.claim(self.db, room, PER_ENDPOINT, busy, self.lease_us)
        except Exception as exc:
            # The database is away (ServiceError) or worse: one line per outage, then try on.
            if not self._claims_failing:
                log.warning("cannot claim webhook deliveries; trying again", extra={"error": str(exc)})
            self._claims_failing = True
            return 0
        if self._claims_failing:
            log.info("claiming webhook deliveries again")
            self._claims_failing = False
        for delivery in claimed:
            self._in_flight[delivery.endpoint_id] += 1
            self._slots.setdefault(delivery.endpoint_id, asyncio.Semaphore(PER_ENDPOINT))
            task = asyncio.create_task(self._attempt(delivery), name="webhook attempt")
            self._attempts.add(task)
            task.add_done_callback(functools.partial(self._done, endpoint_id=delivery.endpoint_id))
        # A claim cut short by the per-endpoint limit is not a sign that nothing else is due.
        return len(claimed) if len(claimed) < room else room

    def _done(self, task: asyncio.Task[None], endpoint_id: str) -> None:
        self._attempts.discard(task)
        self._in_flight[endpoint_id] -= 1
        if self._in_flight[endpoint_id] <= 0:
            del self._in_flight[endpoint_id]
            del self._slots[endpoint_id]
        self._slot_free.set()

    async def _attempt(self, delivery: Claimed) -> None:
        try:
            async with self._slots[delivery.endpoint_id]:
                outcome = await self._send(delivery)
            status = await deliveries.finish(self.db, delivery, outcome, self.settings.webhook_retry_schedule_s)
        except ServiceError as exc:  # the database: the lease runs out, and the delivery is tried again
            log.warning("could not record a webhook attempt", extra={"error": exc.message})
            return
        except Exception:
            log.exception("webhook attempt failed")
            return
        WEBHOOK_ATTEMPTS.labels("delivered" if outcome.delivered else (status or "lost_claim")).inc()
        if not outcome.delivered:
            log.info(
                "webhook attempt failed",
                extra={
                    "endpoint_id": delivery.endpoint_id,
                    "order_id": delivery.order_id,
                    "version": delivery.version,
                    "attempt": delivery.attempts + 1,
                    "status_code": outcome.status_code,
                    "error": outcome.error,
                    "delivery_status": status,
                },
            )

    async def _send(self, delivery: Claimed) -> Outcome:
        inputs = await deliveries.attempt_inputs(self.db, delivery)
        if inputs is None or inputs["status"] != ENABLED:
            return Outcome(False, error="not sent: the endpoint was deleted")
        event = to_event(0, inputs["doc"], inputs["created_us"])
        body = orjson.dumps(event_json(event, self.settings.public_url))
        timestamp = now_us() // 1_000_000
        headers = {
            "content-type": "application/json",
            "webhook-id": event.id,
            "webhook-timestamp": str(timestamp),
            "webhook-signature": signature_header(signing_secrets(inputs, now_us()), event.id, timestamp, body),
        }
        return await self.sender.send(delivery.endpoint_id, inputs["url"], headers, body)
