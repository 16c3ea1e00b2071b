"""The soak's steady mixed load: shoppers that create orders with Idempotency-Keys (cards that
pay, cards that are declined, QR payments that they then confirm), refund some, and read them
back; and clients that open a new connection for every request. Every answer that is not the
expected one is an error of the run; every order a client was told about is kept (`told`) for
the audit of the books at the end."""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from collections import Counter
from contextlib import suppress
from dataclasses import dataclass, field
from typing import Any

import httpx

METHODS = ["pm_card_visa"] * 5 + ["pm_card_chargeDeclined", "pm_wallet_qr", "pm_wallet_qr"]
REFUND_SHARE = 0.2


@dataclass
class Tally:
    """What every client of the run adds to."""

    requests: Counter[str] = field(default_factory=Counter)
    errors: list[str] = field(default_factory=list)
    create_ms: list[float] = field(default_factory=list)
    # Client key → the order it was answered with; orders changed after their creation.
    told: dict[str, str | None] = field(default_factory=dict)
    changed: set[str] = field(default_factory=set)

    def error(self, what: str) -> None:
        self.errors.append(what[:300])


async def call(
    tally: Tally, http: httpx.AsyncClient, method: str, path: str, expected: int, kind: str, **kwargs: Any
) -> httpx.Response | None:
    """One request; the answer if it is the expected status, else None (and an error)."""
    tally.requests[kind] += 1
    try:
        reply = await http.request(method, path, **kwargs)
    except httpx.HTTPError as exc:
        tally.error(f"{kind}: {type(exc).__name__}")
        return None
    if reply.status_code != expected:
        tally.error(f"{kind}: {reply.status_code} {reply.text[:200]}")
        return None
    return reply


async def create(
    tally: Tally, http: httpx.AsyncClient, customer: str, method: str, amount: int
) -> dict[str, Any] | None:
    key = f"soak-{uuid.uuid4().hex}"
    tally.told[key] = None
    body = {
        "customer_id": customer,
        "currency": "EUR",
        "items": [{"sku": "SOAK", "quantity": 1, "unit_price": amount}],
        "payment_method": method,
    }
    started = time.perf_counter()
    reply = await call(tally, http, "POST", "/v1/orders", 201, "create", json=body, headers={"Idempotency-Key": key})
    if reply is None:
        return None
    tally.create_ms.append((time.perf_counter() - started) * 1000)
    order: dict[str, Any] = reply.json()
    tally.told[key] = order["id"]
    return order


async def refund(tally: Tally, http: httpx.AsyncClient, order_id: str, body: dict[str, int]) -> dict[str, Any] | None:
    tally.changed.add(order_id)
    headers = {"Idempotency-Key": f"soak-rf-{uuid.uuid4().hex}"}
    reply = await call(tally, http, "POST", f"/v1/orders/{order_id}/refund", 200, "refund", json=body, headers=headers)
    return None if reply is None else reply.json()


async def confirm(tally: Tally, http: httpx.AsyncClient, payment_id: str) -> None:
    await call(tally, http, "POST", f"/v1/payments/{payment_id}/confirm", 200, "confirm", json={})


class Shopper:
    """Creates orders at `interval_s` apart, and does to each what a shop would."""

    def __init__(self, tally: Tally, url: str, headers: dict[str, str], number: int, interval_s: float) -> None:
        self.tally = tally
        self.url = url
        self.headers = headers
        self.customer = f"cus_soak_{number}"
        self.interval_s = interval_s
        self.rng = random.Random(number)

    async def run(self, stop: asyncio.Event) -> None:
        async with httpx.AsyncClient(base_url=self.url, headers=self.headers, timeout=30) as http:
            next_at = time.monotonic() + self.rng.uniform(0, self.interval_s)
            while not stop.is_set():
                await asyncio.sleep(max(0.0, next_at - time.monotonic()))
                next_at += self.interval_s
                await self.one_order(http)

    async def one_order(self, http: httpx.AsyncClient) -> None:
        tally = self.tally
        order = await create(tally, http, self.customer, self.rng.choice(METHODS), self.rng.randint(100, 9999))
        if order is None:
            return
        if order["status"] == "requires_action":
            await confirm(tally, http, order["payment"]["id"])
        elif order["status"] == "paid" and self.rng.random() < REFUND_SHARE:
            await refund(tally, http, order["id"], {"amount": 1})
        await call(tally, http, "GET", f"/v1/orders/{order['id']}", 200, "get")
        if self.rng.random() < 0.2:
            await call(tally, http, "GET", f"/v1/orders?customer_id={self.customer}&page_size=5", 200, "list")


async def fresh_connections(
    tally: Tally, url: str, headers: dict[str, str], interval_s: float, stop: asyncio.Event
) -> None:
    """A client that connects anew for every request (and hangs up after it): connections that
    come and go must not leave anything open behind in the gateway."""
    while not stop.is_set():
        async with httpx.AsyncClient(base_url=url, headers=headers, timeout=30) as http:
            await call(tally, http, "GET", "/v1/orders?page_size=5", 200, "list (new connection)")
        with suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), interval_s)
