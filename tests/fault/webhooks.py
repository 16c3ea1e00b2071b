"""The webhook endpoint of a fault run: registered before the run's first order by a second
account — the one of the watched order, which also has a small load of its own (HOOKED_CLIENTS
beside the main load's 32: enough orders in flight at every fault, few enough deliveries not to
change what the main load sees) — and aimed at a real receiver on loopback
(tests/webhook_receiver.py), so that every event of that account is delivered while services are
killed, stopped, slowed and cut from their database. The receiver refuses some events on purpose,
chosen by their id: one in `REFUSED_EVERY_TIME` at every attempt (it must end `failed`, after the
whole schedule, without holding up the order's next version for longer), one in `REFUSED_ONCE`
the first time only (it is retried). The watched order's hundreds of versions go one after
another: its events are never refused, so as not to add the schedule's waits to the end of the run.

At the end (`settle`) the run waits until the receiver has had every event and the delivery log,
read through the REST API as a user would, gives each a final status — the retries need the
schedule's time; `DELIVERED_WITHIN_S` is there only against a hang — and hands the log and what
the receiver got to the ledger's rules (tests/fault/deliveries.py).
"""

from __future__ import annotations

import os
import time
import zlib
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from contextlib import AsyncExitStack, suppress
from typing import Any

import httpx
import orjson
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from tests.fault.deliveries import FAILED, SUCCEEDED, Delivery, DeliveryBooks, Received
from tests.fault.watchers import post_until_done
from tests.harness import Cluster, Stack
from tests.webhook_receiver import Arrival, Behaviour, Receiver, receiving

# Short, so that a delivery refused every time is final a few seconds after its event; a timeout
# long enough for a receiver in the test's busy event loop.
SCHEDULE = "0.2,0.5,1"
ENV = {"WEBHOOK_ALLOW_PRIVATE_NETWORKS": "true", "WEBHOOK_RETRY_SCHEDULE_S": SCHEDULE, "WEBHOOK_TIMEOUT_S": "2"}
ATTEMPTS = 1 + len(SCHEDULE.split(","))
REFUSED_EVERY_TIME = 100
REFUSED_ONCE = 25
DELIVERED_WITHIN_S = 180.0
PATH = "/fault"
HOOKED_CLIENTS = int(os.environ.get("FAULT_WEBHOOK_CLIENTS", "2"))
PAGE = 100


def with_webhooks(stack: Stack | Cluster) -> None:
    """Give every service of a stack or cluster (not yet started) the run's webhook settings."""
    for service in stack.services.values():
        service.env.update(ENV)


class Webhooks:
    def __init__(self, url: str, headers: dict[str, str]) -> None:
        self.url = url
        self.headers = headers
        self.receiver = Receiver()
        self.received: list[Received] = []
        self.endpoint: dict[str, Any] = {}
        self.exempt: set[str] = set()  # orders whose events are never refused
        self.figures: dict[str, Any] = {}
        self._copies: Counter[str] = Counter()
        self._awaited: set[tuple[str, int]] = set()
        self._verifier: Webhook | None = None
        self._closing = AsyncExitStack()

    async def start(self) -> None:
        await self._closing.enter_async_context(receiving(self.receiver))
        self.receiver.behaviours[PATH] = Behaviour(answer=self._answer)
        body = {"url": self.receiver.url(PATH), "description": "the fault run's ledger"}
        async with httpx.AsyncClient(base_url=self.url, headers=self.headers, timeout=30) as http:
            reply = await post_until_done(http, "/v1/webhook_endpoints", body)
        assert reply.status_code == 201, f"the endpoint was refused (start with tests.fault.webhooks.ENV): {reply.text}"
        self.endpoint = reply.json()
        self._verifier = Webhook(self.endpoint["secret"])

    async def close(self) -> None:
        await self._closing.aclose()

    def _answer(self, arrival: Arrival) -> int:
        """Record the request (verified as it comes: the signature's timestamp is checked against
        the clock) and choose its answer."""
        assert self._verifier is not None
        webhook_id = arrival.headers.get("webhook-id", "")
        event: Any = None
        verified = False
        try:
            event, verified = self._verifier.verify(arrival.body, arrival.headers), True
        except WebhookVerificationError:
            with suppress(ValueError):
                event = orjson.loads(arrival.body)
        try:
            order_id, version = str(event["data"]["order"]["id"]), int(event["data"]["version"])
        except (KeyError, TypeError, ValueError):
            order_id, version = "?", 0
        status = self._status(webhook_id, order_id)
        self.received.append(Received(order_id, version, status, verified, webhook_id))
        self._copies[webhook_id] += 1
        self._awaited.discard((order_id, version))
        return status

    def _status(self, webhook_id: str, order_id: str) -> int:
        if order_id in self.exempt:
            return 204
        draw = zlib.crc32(webhook_id.encode())
        if draw % REFUSED_EVERY_TIME == 0 or (draw % REFUSED_ONCE == 1 and self._copies[webhook_id] == 0):
            return 503
        return 204

    async def settle(self, events: Mapping[str, Sequence[int]]) -> DeliveryBooks:
        """What the ledger needs, once every event in `events` (each order's versions) has come
        and has a final status in the delivery log (or DELIVERED_WITHIN_S has passed)."""
        started = time.monotonic()
        deadline = started + DELIVERED_WITHIN_S
        self._awaited = {(order, v) for order, versions in events.items() for v in versions}
        self._awaited -= {(r.order_id, r.version) for r in self.received}
        # What the load left for the endpoint: events that had not reached it yet.
        self.figures["webhook_backlog_at_end"] = len(self._awaited)
        self.figures["webhook_backlog_exempt"] = sum(1 for order, _ in self._awaited if order in self.exempt)
        with suppress(TimeoutError):
            await self.receiver.wait_until(lambda: not self._awaited, timeout=DELIVERED_WITHIN_S)
        self.figures["webhook_all_received_s"] = round(time.monotonic() - started, 3)
        async with httpx.AsyncClient(base_url=self.url, headers=self.headers, timeout=30) as http:
            log = await self._read_log(http)
            while (left := _unfinished(events, log)) and time.monotonic() < deadline:
                # The last attempts of refused events are still to come: look again at the next
                # request the receiver gets, or after a second (the log is another process's).
                await self._next_request(timeout=1)
                if len(left) > PAGE:
                    log = await self._read_log(http)
                else:
                    for order_id in sorted(left):
                        log[order_id] = (await self._read_log(http, order_id))[order_id]
        self.figures["webhook_all_final_s"] = round(time.monotonic() - started, 3)
        return DeliveryBooks(ATTEMPTS, [d for found in log.values() for d in found], list(self.received))

    async def _next_request(self, timeout: float) -> None:
        seen = len(self.received)
        with suppress(TimeoutError):
            await self.receiver.wait_until(lambda: len(self.received) > seen, timeout=timeout)

    async def _read_log(self, http: httpx.AsyncClient, order_id: str | None = None) -> dict[str, list[Delivery]]:
        """The endpoint's whole delivery log (or one order's), page by page, by order."""
        found: dict[str, list[Delivery]] = defaultdict(list)
        params: dict[str, str | int] = {"page_size": PAGE, **({"order_id": order_id} if order_id else {})}
        while True:
            reply = await http.get(f"/v1/webhook_endpoints/{self.endpoint['id']}/deliveries", params=params)
            assert reply.status_code == 200, reply.text
            page = reply.json()
            for d in page["deliveries"]:
                found[d["order_id"]].append(Delivery(d["order_id"], d["version"], d["status"], d["attempts"]))
            if not page["next_page_token"]:
                return found
            params["page_token"] = page["next_page_token"]


def _unfinished(events: Mapping[str, Sequence[int]], log: Mapping[str, list[Delivery]]) -> set[str]:
    """The orders with an event whose delivery is not (yet) in the log with a final status."""
    left = set()
    for order_id, versions in events.items():
        final = {d.version for d in log.get(order_id, []) if d.status in (SUCCEEDED, FAILED)}
        if not set(versions) <= final:
            left.add(order_id)
    return left
