"""Benchmark 3, push: for one order change, how long until each kind of client sees it, at 1,
100 and 1,000 clients watching the order; the HTTP requests an idle client spends per minute; and
the gateway's memory per idle SSE and WebSocket watcher.

The change: an order paid with `pm_wallet_qr` waits in `requires_action`; the benchmark confirms
its payment (POST /v1/payments/{id}/confirm) and the order becomes `paid`. Each delay runs from
just before that request to the moment the client has the new version in hand.
"""

from __future__ import annotations

import asyncio
import logging
import statistics
import time
from typing import Any

import aiohttp
import orjson

from bench.config import Plan
from bench.procs import rss_kib
from bench.push_clients import CHANNELS, Follow, PushError, Watcher, follower, new_session
from bench.stats import Delays
from tests.harness import Stack

log = logging.getLogger(__name__)

ORDER = {
    "customer_id": "cus_bench",
    "currency": "EUR",
    "items": [{"sku": "BOOK-42", "quantity": 1, "unit_price": 1299}],
    "payment_method": "pm_wallet_qr",
}
# At most this many connections are being opened at once (a browser crowd arrives over time).
_CONNECTING = 100
_SEEN_TIMEOUT_S = 15.0
# How long the probe of long polling waits for the answer to a wait=1 request.
_PROBE_WAIT_S = 15.0


async def _waiting_order(session: aiohttp.ClientSession, base: str) -> tuple[str, str, int]:
    """A new order in requires_action: (order id, payment id, version)."""
    async with session.post(f"{base}/v1/orders", data=orjson.dumps(ORDER), headers=_JSON) as response:
        order = orjson.loads(await response.read())
        if response.status != 201 or order["status"] != "requires_action":
            raise PushError(f"could not create a waiting order: {response.status} {order}")
    return order["id"], order["payment"]["id"], order["version"]


_JSON = {"Content-Type": "application/json"}


async def _confirm(session: aiohttp.ClientSession, base: str, payment_id: str) -> None:
    async with session.post(f"{base}/v1/payments/{payment_id}/confirm", data=b"{}", headers=_JSON) as response:
        await response.read()
        if response.status != 200:
            raise PushError(f"confirm: {response.status}")


class Crowd:
    """N watchers of one order, connected at most _CONNECTING at a time."""

    def __init__(self, follow: Follow, session: aiohttp.ClientSession, base: str, order_id: str, version: int):
        self.follow, self.session, self.base, self.order_id = follow, session, base, order_id
        self.version = version
        self.watchers: list[Watcher] = []
        self.tasks: list[asyncio.Task[None]] = []
        self._gate = asyncio.Semaphore(_CONNECTING)

    def add(self, count: int) -> None:
        for _ in range(count):
            watcher = Watcher(self.version)
            self.watchers.append(watcher)
            self.tasks.append(asyncio.create_task(self._run(watcher)))

    async def _run(self, watcher: Watcher) -> None:
        started = asyncio.create_task(self.follow(self.session, self.base, self.order_id, watcher))
        try:
            async with self._gate:
                ready = asyncio.create_task(watcher.ready.wait())
                try:
                    await asyncio.wait([started, ready], return_when=asyncio.FIRST_COMPLETED)
                finally:
                    ready.cancel()
            await started
        finally:
            # Cancelled while connecting (close(), a failed trial): take the client down too.
            started.cancel()
            await asyncio.gather(started, return_exceptions=True)

    async def ready(self, timeout: float) -> None:
        """Until every watcher follows the order; a watcher that failed raises here."""
        deadline = time.monotonic() + timeout
        for watcher, task in zip(self.watchers, self.tasks, strict=True):
            waiting = asyncio.create_task(watcher.ready.wait())
            done, _ = await asyncio.wait(
                [waiting, task], timeout=max(0.0, deadline - time.monotonic()), return_when=asyncio.FIRST_COMPLETED
            )
            waiting.cancel()
            if task in done and (error := task.exception()) is not None:
                raise error
            if not done:
                raise PushError(f"{len(self.watchers)} watchers were not ready within {timeout} s")

    async def seen(self, timeout: float) -> None:
        await asyncio.wait(self.tasks, timeout=timeout)

    async def close(self) -> None:
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)

    @property
    def requests(self) -> int:
        return sum(w.requests for w in self.watchers)


async def _trial(
    session: aiohttp.ClientSession,
    confirmer: aiohttp.ClientSession,
    base: str,
    follow: Follow,
    watchers: int,
    settle_s: float,
) -> tuple[list[float], int, float]:
    """One change seen by `watchers` clients of one order: (their delays in seconds, how many
    missed it, how long the confirm request itself took)."""
    order_id, payment_id, version = await _waiting_order(confirmer, base)
    crowd = Crowd(follow, session, base, order_id, version)
    try:
        crowd.add(watchers)
        await crowd.ready(timeout=60)
        await asyncio.sleep(settle_s)
        started = time.perf_counter()
        await _confirm(confirmer, base, payment_id)
        confirmed = time.perf_counter() - started
        await crowd.seen(_SEEN_TIMEOUT_S)
    finally:
        await crowd.close()
    delays = [w.seen_at - started for w in crowd.watchers if w.seen_at is not None]
    return delays, watchers - len(delays), confirmed


async def _delays(plan: Plan, base: str, channel: str) -> list[dict[str, Any]]:
    follow = follower(channel, plan.short_poll_interval_s, plan.long_poll_wait_s)
    rows = []
    async with new_session() as session, new_session() as confirmer:
        for watchers in plan.push_watchers:
            row: dict[str, Any] = {
                "channel": channel,
                "watchers": watchers,
                "trials": plan.push_trials.get(watchers, 1),
            }
            try:
                row |= await _crowd_delays(session, confirmer, base, follow, watchers, row["trials"], channel)
            except (PushError, aiohttp.ClientError, TimeoutError) as exc:
                # One failed crowd (an overloaded machine) must not cost the other figures.
                log.warning("push %s x%d failed: %s", channel, watchers, exc)
                row["error"] = f"{type(exc).__name__}: {exc}"
            else:
                log.info("push %s x%d: p50 %.1f ms, p99 %.1f ms", channel, watchers, row["p50_ms"], row["p99_ms"])
            rows.append(row)
    return rows


async def _crowd_delays(
    session: aiohttp.ClientSession,
    confirmer: aiohttp.ClientSession,
    base: str,
    follow: Follow,
    watchers: int,
    trials: int,
    channel: str,
) -> dict[str, Any]:
    pooled: list[float] = []
    confirms: list[float] = []
    missed = 0
    for _ in range(trials):
        # Long polls are in flight but not yet held when "ready": give the gateway a moment.
        settle = 0.2 + watchers * 0.001 if channel == "long_poll" else 0.05
        delays, lost, confirmed = await _trial(session, confirmer, base, follow, watchers, settle)
        pooled += delays
        confirms.append(confirmed)
        missed += lost
    row = Delays.from_seconds(pooled, missed).to_json()
    # The confirm request's own round trip (two durable writes): the floor under every delay.
    row["confirm_p50_ms"] = round(statistics.median(confirms) * 1000, 3)
    return row


async def _idle(plan: Plan, base: str, channels: list[str]) -> list[dict[str, Any]]:
    """One client of each kind on an order that does not change, for `idle_window_s`: the HTTP
    requests it sends after its first one, per minute."""
    async with new_session() as session:
        order_id, _, version = await _waiting_order(session, base)
        crowds = {}
        for channel in channels:
            crowd = Crowd(
                follower(channel, plan.short_poll_interval_s, plan.long_poll_wait_s), session, base, order_id, version
            )
            crowd.add(1)
            crowds[channel] = crowd
        started = time.perf_counter()
        await asyncio.sleep(plan.idle_window_s)
        elapsed = time.perf_counter() - started
        rows = []
        for channel, crowd in crowds.items():
            after_first = max(crowd.requests - 1, 0)
            rows.append(
                {
                    "channel": channel,
                    "window_s": round(elapsed, 2),
                    "requests": crowd.requests,
                    "requests_per_min": round(after_first * 60 / elapsed, 2),
                }
            )
            await crowd.close()
    return rows


async def _memory(plan: Plan, stack: Stack, channel: str) -> dict[str, Any]:
    """Gateway RSS growth per idle watcher (after 20 watchers warmed the code paths up), on a
    freshly started gateway in the full run."""
    if plan.memory_fresh_gateway:
        await asyncio.to_thread(stack.restart, "gateway")
    assert stack.gateway.proc is not None
    pid = stack.gateway.proc.pid
    follow = follower(channel, plan.short_poll_interval_s, plan.long_poll_wait_s)
    async with new_session() as session:
        order_id, _, version = await _waiting_order(session, stack.url)
        crowd = Crowd(follow, session, stack.url, order_id, version)
        try:
            crowd.add(20)
            await crowd.ready(timeout=30)
            await asyncio.sleep(1.0)
            before = rss_kib(pid)
            crowd.add(plan.memory_watchers)
            await crowd.ready(timeout=120)
            await asyncio.sleep(1.0)
            after = rss_kib(pid)
        finally:
            await crowd.close()
    return {
        "channel": channel,
        "watchers": plan.memory_watchers,
        "rss_before_kib": before,
        "rss_after_kib": after,
        "kib_per_watcher": round((after - before) / plan.memory_watchers, 2),
    }


async def _probe(base: str, channel: str) -> str | None:
    """None when the gateway serves this channel (docs/push-channels.md#the-four-ways); else why
    not."""
    follow = follower(channel, 1.0, 1)
    try:
        async with new_session() as session:
            order_id, _, version = await _waiting_order(session, base)
            crowd = Crowd(follow, session, base, order_id, version)
            crowd.add(1)
            try:
                await crowd.ready(timeout=10)
                if channel == "long_poll":
                    # Held for wait=1 s, then 304 with Preference-Applied, then asked again. A
                    # busy machine may take a while longer: wait for the second request itself.
                    deadline = time.monotonic() + _PROBE_WAIT_S
                    while crowd.requests < 2 and not crowd.tasks[0].done() and time.monotonic() < deadline:
                        await asyncio.wait(crowd.tasks, timeout=0.05)
                    if crowd.tasks[0].done():
                        crowd.tasks[0].result()
                    if crowd.requests < 2:
                        raise PushError(f"long poll: the request was not answered within {_PROBE_WAIT_S} s")
            finally:
                await crowd.close()
    except (PushError, aiohttp.ClientError, TimeoutError, KeyError, ValueError) as exc:
        return f"{type(exc).__name__}: {exc}"
    return None


async def _run(plan: Plan, stack: Stack) -> dict[str, Any]:
    reasons = await asyncio.gather(*(_probe(stack.url, channel) for channel in CHANNELS))
    unavailable = {channel: reason for channel, reason in zip(CHANNELS, reasons, strict=True) if reason}
    channels = [c for c in CHANNELS if c not in unavailable]
    result: dict[str, Any] = {
        "short_poll_interval_s": plan.short_poll_interval_s,
        "long_poll_wait_s": plan.long_poll_wait_s,
        "available": {c: c not in unavailable for c in CHANNELS},
        "unavailable": unavailable,
        "delay": [],
        "idle": [],
        "memory": [],
    }
    if not channels:
        return result
    idle = asyncio.create_task(_idle(plan, stack.url, channels))
    try:
        for channel in channels:
            result["delay"] += await _delays(plan, stack.url, channel)
    finally:
        result["idle"] = await idle
    for channel in ("sse", "websocket"):
        if channel in channels:
            result["memory"].append(await _memory(plan, stack, channel))
    return result


def run(plan: Plan, stack: Stack) -> dict[str, Any]:
    return asyncio.run(_run(plan, stack))
