"""The load of the fault suite: N concurrent clients creating orders through the gateway as a
good client of a payment API would — a fresh `Idempotency-Key` per order, and a retry of 503,
504, 409 (the same key still running) and of a broken connection with the same key and body,
with capped exponential backoff, until the order is created or `give_up_s` has passed.

Every attempt is recorded, so that a test can tell when clients saw errors and when they
stopped seeing them."""

from __future__ import annotations

import asyncio
import itertools
import random
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import httpx

# Mostly cards that pay, some that are declined: every order must end paid or payment_failed.
PAYMENT_METHODS = (
    ["pm_card_visa"] * 5
    + ["pm_card_mastercard"] * 3
    + ["pm_card_chargeDeclined", "pm_card_chargeDeclinedInsufficientFunds", "pm_card_chargeDeclinedExpiredCard"]
)
RETRIED = frozenset({409, 503, 504})


@dataclass(frozen=True)
class Attempt:
    started: float
    ended: float
    outcome: int | str  # an HTTP status, or the name of the transport error


@dataclass
class KeyResult:
    key: str
    started: float
    order_id: str | None = None
    status: str | None = None
    finished: float | None = None
    attempts: int = 0
    outcomes: list[int | str] = field(default_factory=list)
    # Every order id any attempt of this key was answered with (more than one: a duplicate).
    seen_ids: set[str] = field(default_factory=set)
    unexpected: list[str] = field(default_factory=list)


def order_body(payment_method: str, rng: random.Random) -> dict[str, Any]:
    return {
        "customer_id": f"cus_fault_{rng.randrange(1000)}",
        "currency": "EUR",
        "items": [
            {"sku": f"SKU-{rng.randrange(100)}", "quantity": rng.randint(1, 3), "unit_price": rng.randint(1, 5000)}
        ],
        "payment_method": payment_method,
    }


class Load:
    def __init__(
        self, url: str, headers: dict[str, str], *, clients: int = 32, give_up_s: float = 90, seed: int = 5
    ) -> None:
        self.url = url
        self.headers = headers
        self.clients = clients
        self.give_up_s = give_up_s
        self.rng = random.Random(seed)
        self.results: dict[str, KeyResult] = {}
        self.attempts: list[Attempt] = []
        self._stop = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._counter = itertools.count()
        # Set at each successful creation: a test can await progress instead of sleeping.
        self.progress = asyncio.Event()

    # -- running ----------------------------------------------------------------------------

    def start(self) -> None:
        self._http = httpx.AsyncClient(
            base_url=self.url,
            headers=self.headers,
            timeout=httpx.Timeout(30, connect=5),
            limits=httpx.Limits(max_connections=self.clients * 2, max_keepalive_connections=self.clients),
        )
        self._tasks = [asyncio.create_task(self._client(n), name=f"client-{n}") for n in range(self.clients)]

    async def stop(self) -> None:
        """Start no new orders; wait until every started one is answered (or given up)."""
        self._stop.set()
        await asyncio.gather(*self._tasks)
        await self._http.aclose()

    async def run_for(self, seconds: float) -> None:
        self.start()
        await asyncio.sleep(seconds)
        await self.stop()

    async def wait_for_orders(self, count: int) -> None:
        """Until `count` more orders have been created (real progress, not a sleep)."""
        target = self.created + count
        while self.created < target:
            self.progress.clear()
            await self.progress.wait()

    async def _client(self, number: int) -> None:
        while not self._stop.is_set():
            key = f"fault-{number}-{next(self._counter)}-{uuid.uuid4().hex[:8]}"
            body = order_body(self.rng.choice(PAYMENT_METHODS), self.rng)
            await self._create(key, body)

    async def _create(self, key: str, body: dict[str, Any]) -> None:
        result = self.results[key] = KeyResult(key, time.monotonic())
        backoff = 0.05
        while time.monotonic() - result.started < self.give_up_s:
            result.attempts += 1
            started = time.monotonic()
            outcome: int | str
            try:
                reply = await self._http.post("/v1/orders", json=body, headers={"Idempotency-Key": key})
                outcome = reply.status_code
            except httpx.TransportError as exc:
                outcome = type(exc).__name__
            self.attempts.append(Attempt(started, time.monotonic(), outcome))
            result.outcomes.append(outcome)
            if outcome == 201:
                document = reply.json()
                result.seen_ids.add(document["id"])
                result.order_id, result.status = document["id"], document["status"]
                result.finished = time.monotonic()
                self.progress.set()
                return
            if isinstance(outcome, int) and outcome not in RETRIED:
                result.unexpected.append(f"{outcome}: {reply.text[:300]}")
                return
            await asyncio.sleep(backoff * self.rng.uniform(0.5, 1.5))
            backoff = min(backoff * 2, 1.0)

    # -- figures ----------------------------------------------------------------------------

    @property
    def created(self) -> int:
        return sum(1 for r in self.results.values() if r.order_id is not None)

    def told(self) -> dict[str, str | None]:
        return {key: r.order_id for key, r in self.results.items()}

    def figures(self, *, fault_at: float | None = None, back_at: float | None = None) -> dict[str, Any]:
        """Counts, and the timing of the errors clients saw around a fault injected at `fault_at`
        with the service back (restarted) at `back_at` (both `time.monotonic()`)."""
        outcomes = Counter(str(a.outcome) for a in self.attempts)
        failures = [a for a in self.attempts if a.outcome != 201]
        waits = [r.finished - r.started for r in self.results.values() if r.finished is not None]
        figures: dict[str, Any] = {
            "clients": self.clients,
            "orders_attempted": len(self.results),
            "orders_created": self.created,
            "attempts": len(self.attempts),
            "retries": len(self.attempts) - len(self.results),
            "outcomes": dict(sorted(outcomes.items())),
            "unanswered_keys": sum(1 for r in self.results.values() if r.order_id is None),
            "unexpected_answers": sum(len(r.unexpected) for r in self.results.values()),
            "keys_with_two_orders": sum(1 for r in self.results.values() if len(r.seen_ids) > 1),
            "max_order_wait_s": round(max(waits, default=0), 3),
        }
        if failures and fault_at is not None:
            first, last = min(a.ended for a in failures), max(a.ended for a in failures)
            figures["errors_seen_from_s"] = round(first - fault_at, 3)
            figures["errors_seen_until_s"] = round(last - fault_at, 3)
        if back_at is not None:
            served = [a.ended for a in self.attempts if a.outcome == 201 and a.started >= back_at]
            # From the restart of the service until the first order created by a request sent after it.
            figures["recovery_s"] = round(min(served) - back_at, 3) if served else None
        return figures
