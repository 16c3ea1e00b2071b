"""The load of the fault suite: N concurrent clients creating orders through the gateway as a
good client of a payment API would — a fresh `Idempotency-Key` per order, and a retry of 503,
504, 409 (the same key still running) and of a broken connection with the same key and body,
after the answer's `Retry-After` when it has one and else with capped exponential backoff, until
the order is created or `give_up_s` has passed. With several gateways, client n stays on
gateway n mod their number (as behind a load balancer that keeps a client's connections).

Every attempt is recorded — its status, the problem document's `code` and `detail`, its
`Retry-After` — so that a test can tell which errors clients saw, when they began, when they
stopped, and how long an order waited for its answer."""

from __future__ import annotations

import asyncio
import itertools
import random
import time
import uuid
from collections import Counter
from collections.abc import Sequence
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
MAX_BACKOFF_S = 1.0


def retry_after_s(reply: httpx.Response | None) -> float | None:
    """The answer's `Retry-After` in seconds (this API sends whole seconds), or None."""
    value = reply.headers.get("retry-after") if reply is not None else None
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


def pause_s(reply: httpx.Response | None, backoff: float, rng: random.Random) -> float:
    """How long a good client waits before the next attempt: what the server asked for (with a
    little jitter so that the clients it told the same do not come back at one instant), else
    the backoff, jittered."""
    asked = retry_after_s(reply)
    if asked is not None:
        return asked * rng.uniform(1.0, 1.1)
    return backoff * rng.uniform(0.5, 1.5)


def problem_of(reply: httpx.Response) -> tuple[str | None, str | None]:
    """The problem document's `code` and `detail` (None, None when the body is not one)."""
    try:
        document = reply.json()
    except ValueError:
        return None, None
    if not isinstance(document, dict):
        return None, None
    detail = document.get("detail")
    return document.get("code"), detail[:120] if isinstance(detail, str) else None


@dataclass(frozen=True)
class Attempt:
    started: float
    ended: float
    outcome: int | str  # an HTTP status, or the name of the transport error
    gateway: int = 0  # which of the gateways (their index)
    code: str | None = None  # of the problem document of an error
    detail: str | None = None
    retry_after_s: float | None = None

    @property
    def kind(self) -> str:
        """What the client saw, for counting: `409 ABORTED: a request with this key is in progress`."""
        if self.code is None:
            return str(self.outcome)
        return f"{self.outcome} {self.code}: {self.detail}"


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
        self,
        urls: str | Sequence[str],
        headers: dict[str, str],
        *,
        clients: int = 32,
        give_up_s: float = 90,
        seed: int = 5,
    ) -> None:
        self.urls = [urls] if isinstance(urls, str) else list(urls)
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
        per_gateway = -(-self.clients // len(self.urls))
        self._http = [
            httpx.AsyncClient(
                base_url=url,
                headers=self.headers,
                timeout=httpx.Timeout(30, connect=5),
                limits=httpx.Limits(max_connections=per_gateway * 2, max_keepalive_connections=per_gateway),
            )
            for url in self.urls
        ]
        self._tasks = [asyncio.create_task(self._client(n), name=f"client-{n}") for n in range(self.clients)]

    async def stop(self) -> None:
        """Start no new orders; wait until every started one is answered (or given up)."""
        self._stop.set()
        await asyncio.gather(*self._tasks)
        await asyncio.gather(*(http.aclose() for http in self._http))

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
            await self._create(key, body, number % len(self.urls))

    async def _create(self, key: str, body: dict[str, Any], gateway: int) -> None:
        result = self.results[key] = KeyResult(key, time.monotonic())
        http = self._http[gateway]
        backoff = 0.05
        while time.monotonic() - result.started < self.give_up_s:
            result.attempts += 1
            started = time.monotonic()
            reply: httpx.Response | None = None
            try:
                reply = await http.post("/v1/orders", json=body, headers={"Idempotency-Key": key})
            except httpx.TransportError as exc:
                attempt = Attempt(started, time.monotonic(), type(exc).__name__, gateway)
            else:
                code, detail = problem_of(reply) if reply.status_code >= 400 else (None, None)
                attempt = Attempt(
                    started, time.monotonic(), reply.status_code, gateway, code, detail, retry_after_s(reply)
                )
            self.attempts.append(attempt)
            result.outcomes.append(attempt.outcome)
            if reply is not None and reply.status_code == 201:
                document = reply.json()
                result.seen_ids.add(document["id"])
                result.order_id, result.status = document["id"], document["status"]
                result.finished = time.monotonic()
                self.progress.set()
                return
            if reply is not None and reply.status_code not in RETRIED:
                result.unexpected.append(f"{reply.status_code}: {reply.text[:300]}")
                return
            await asyncio.sleep(pause_s(reply, backoff, self.rng))
            backoff = min(backoff * 2, MAX_BACKOFF_S)

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
        waits = sorted(r.finished - r.started for r in self.results.values() if r.finished is not None)
        asked = [a.retry_after_s for a in failures if a.retry_after_s is not None]
        figures: dict[str, Any] = {
            "clients": self.clients,
            "gateways": len(self.urls),
            "orders_attempted": len(self.results),
            "orders_created": self.created,
            "attempts": len(self.attempts),
            "retries": len(self.attempts) - len(self.results),
            "outcomes": dict(sorted(outcomes.items())),
            # What the clients saw besides 201: every error answer and broken connection.
            "client_errors": len(failures),
            "client_errors_by_status": dict(sorted(Counter(str(a.outcome) for a in failures).items())),
            "keys_that_saw_errors": sum(1 for r in self.results.values() if set(r.outcomes) != {201}),
            "longest_retry_after_s": max(asked, default=None),
            "unanswered_keys": sum(1 for r in self.results.values() if r.order_id is None),
            "unexpected_answers": sum(len(r.unexpected) for r in self.results.values()),
            "keys_with_two_orders": sum(1 for r in self.results.values() if len(r.seen_ids) > 1),
            "max_order_wait_s": round(waits[-1] if waits else 0, 3),
            "p99_order_wait_s": round(waits[min(len(waits) - 1, int(0.99 * len(waits)))] if waits else 0, 3),
        }
        if failures:
            origin = fault_at if fault_at is not None else min(a.started for a in self.attempts)
            kinds: dict[str, dict[str, Any]] = {}
            for attempt in failures:
                seen = kinds.setdefault(attempt.kind, {"count": 0, "gateways": set(), "from_s": None})
                seen["count"] += 1
                seen["gateways"].add(attempt.gateway)
                at = round(attempt.ended - origin, 3)
                seen["from_s"] = at if seen["from_s"] is None else min(seen["from_s"], at)
                seen["until_s"] = at
            # Each kind of error: how many, on which gateways, from when until when (s after the fault).
            figures["client_error_kinds"] = {
                kind: {**seen, "gateways": sorted(seen["gateways"])}
                for kind, seen in sorted(kinds.items(), key=lambda item: -item[1]["count"])
            }
        if failures and fault_at is not None:
            first, last = min(a.ended for a in failures), max(a.ended for a in failures)
            figures["errors_seen_from_s"] = round(first - fault_at, 3)
            figures["errors_seen_until_s"] = round(last - fault_at, 3)
            # Until the last client that saw an error had its order: the fault's end, as clients see it.
            hit = [r.finished for r in self.results.values() if set(r.outcomes) != {201} and r.finished is not None]
            figures["errors_answered_by_s"] = round(max(hit) - fault_at, 3) if hit else None
        if back_at is not None:
            served = [a.ended for a in self.attempts if a.outcome == 201 and a.started >= back_at]
            # From the restart of the service until the first order created by a request sent after it.
            figures["recovery_s"] = round(min(served) - back_at, 3) if served else None
        return figures
