"""Rate limits (docs/security.md#rate-limits): per API key, per client address for requests without one, and on
failed authentications per client address — counted in this process's memory (`memory://`, the
default), or in one Redis shared by every gateway replica (gateway/ratelimit_redis.py), chosen by
GATEWAY_RATE_LIMIT_STORAGE. Both implement `RateLimiter`, with the same GCRA.

A rate is written as the `limits` library writes it (`100/second`, `6000 per minute`,
`10 per 2 seconds`) and parsed by it. The check is GCRA, the generic cell rate algorithm (a
token bucket kept as one number per key, the time at which the bucket would be full again):
`amount` per period on average, and a burst of twice that — `100/second` lets 200 requests
through at once, then 100 a second.

Why not `limits`' own in-memory storage: its expiry timer (a thread started again and again, or
an asyncio task and a worker thread in `limits.aio`) costs CPU on every request, many times
what one number per key does (bench/README.md has the figures).

In memory each gateway replica counts for itself: with N replicas behind a balancer a key may
reach up to N times its rate; with Redis a key gets its rate in total.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol
from urllib.parse import urlsplit

import limits

BURST_FACTOR = 2
# Keys idle long enough to be full again are dropped when the table grows past this.
PRUNE_AT = 10_000
# Sums of float intervals drift by a few ulps: a request due "now" must not be refused for 1e-13 s.
_SLACK_S = 1e-9


@dataclass(frozen=True, slots=True)
class Rate:
    amount: int
    period_s: float

    @classmethod
    def parse(cls, text: str) -> Rate:
        """`100/second` → Rate(100, 1.0). ValueError for what `limits` cannot parse."""
        item = limits.parse(text)
        if item.amount < 1:
            raise ValueError("must allow at least one request")
        return cls(item.amount, float(item.get_expiry()))

    @property
    def interval_s(self) -> float:
        """One request's worth of time."""
        return self.period_s / self.amount

    @property
    def burst(self) -> int:
        """How many requests may come at once, after a quiet spell."""
        return self.amount * BURST_FACTOR

    @property
    def tolerance_s(self) -> float:
        """How far past now a key's TAT may run and a request still pass."""
        return self.interval_s * (self.burst - 1)

    def __str__(self) -> str:
        return f"{self.amount} per {self.period_s:g} s"


class RateLimiter(Protocol):
    """One rate, counted per key (an API key's id, a client address)."""

    async def hit(self, key: str) -> float:
        """Count one request; 0.0 if it may pass, else the seconds until one may."""
        ...

    async def blocked_for(self, key: str) -> float:
        """Seconds until `key` may pass again (0.0: now), without counting anything."""
        ...


class RateStorage(Protocol):
    """Where the limiters count: it makes them, and closes what they share."""

    def limiter(self, rate: Rate, name: str) -> RateLimiter:
        """A limiter of `rate` whose keys are apart from those of the storage's other limiters."""
        ...

    async def close(self) -> None: ...


MEMORY = "memory://"


def parse_storage_url(text: str) -> str:
    """GATEWAY_RATE_LIMIT_STORAGE: `memory://`, or `redis://host:port/n` (`rediss://` for TLS).
    ValueError otherwise; the message never repeats the URL, which may hold a password."""
    text = text.strip()
    if text == MEMORY:
        return text
    parts = urlsplit(text)
    if parts.scheme not in ("redis", "rediss"):
        raise ValueError("must be memory:// (this process) or redis://host:port/n (shared by every gateway)")
    try:
        port = parts.port
    except ValueError:
        raise ValueError("the port of the Redis URL is not a number from 1 to 65535") from None
    if not parts.hostname or port == 0:
        raise ValueError("the Redis URL names no host (write redis://host:port/n)")
    database = parts.path.removeprefix("/")
    if database and not database.isdigit():
        raise ValueError("the Redis URL's path must be a database number (redis://host:port/0)")
    if parts.fragment:
        raise ValueError("the Redis URL may not have a #fragment")
    return text


def open_storage(url: str) -> RateStorage:
    if url == MEMORY:
        return MemoryStorage()
    from gateway.ratelimit_redis import RedisStorage  # the Redis client only where it is used

    return RedisStorage(url)


class MemoryStorage:
    def limiter(self, rate: Rate, name: str) -> Limiter:
        return Limiter(rate)

    async def close(self) -> None:
        pass


class Limiter:
    """In memory: GCRA over a dict of key → theoretical arrival time (TAT), in monotonic seconds."""

    def __init__(self, rate: Rate, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate = rate
        self._interval = rate.interval_s
        self._tolerance = rate.tolerance_s
        self._tat: dict[str, float] = {}
        self._clock = clock

    async def hit(self, key: str) -> float:
        """Count one request; 0.0 if it may pass, else the seconds until one may."""
        now = self._clock()
        tat = self._tat.get(key, now)
        if tat < now:
            tat = now
        wait = tat - self._tolerance - now
        if wait > _SLACK_S:
            return wait
        self._tat[key] = tat + self._interval
        if len(self._tat) > PRUNE_AT:
            self._prune(now)
        return 0.0

    async def blocked_for(self, key: str) -> float:
        """Seconds until `key` may pass again (0.0: now), without counting anything."""
        tat = self._tat.get(key)
        if tat is None:
            return 0.0
        wait = tat - self._tolerance - self._clock()
        return wait if wait > _SLACK_S else 0.0

    def _prune(self, now: float) -> None:
        # A key whose TAT has passed has a full bucket: forgetting it changes nothing.
        self._tat = {key: tat for key, tat in self._tat.items() if tat > now}


def retry_after(wait_s: float) -> str:
    """The Retry-After header: whole seconds, at least 1."""
    return str(max(1, math.ceil(wait_s)))
