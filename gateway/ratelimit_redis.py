"""Rate limits counted in one Redis that every gateway replica shares (CONTRACT §11,
`GATEWAY_RATE_LIMIT_STORAGE=redis://host:port/n`): a key gets its rate in total, however many
gateways serve it.

The same GCRA as the in-memory limiter (gateway/ratelimit.py), as a Lua script that Redis runs
atomically: one round trip (EVALSHA) per check, read-and-update in one step, so that two
gateways counting the same key at the same instant cannot both take the last request. Time is
Redis's own clock (`TIME`), so the gateways' clocks need not agree. A key's entry expires once
its bucket is full again, so Redis holds only keys that are being limited.

Redis unreachable (refused, timed out, any Redis error): the request is let through unlimited
(fail open) — a limiter must not turn a Redis outage into an API outage. One warning line when
an outage begins and one line when Redis answers again; `rate_limit_failed_open_total` (the
gateway's /metrics) counts the checks skipped. While Redis is down it is asked again at most
once every RETRY_S: the requests in between neither wait for a timeout nor open connections.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from urllib.parse import urlsplit

from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from gateway.metrics import RATE_LIMIT_FAILED_OPEN
from gateway.ratelimit import Rate

log = logging.getLogger(__name__)

# KEYS[1]  the key's theoretical arrival time (TAT), in microseconds of Redis's clock
# ARGV[1]  one request's worth of time (µs); ARGV[2] the burst tolerance (µs);
# ARGV[3]  '1': count the request if it may pass; '0': only look
# Returns 0 when the request may pass, else the microseconds until one may. The TAT is written
# with %.0f: tostring() would print a number of 16 digits in exponent form and round it.
GCRA_SCRIPT = """
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000000 + tonumber(clock[2])
local tat = tonumber(redis.call('GET', KEYS[1])) or now
if tat < now then tat = now end
local wait = tat - tonumber(ARGV[2]) - now
if wait > 0 then return wait end
if ARGV[3] == '1' then
  tat = tat + tonumber(ARGV[1])
  redis.call('SET', KEYS[1], string.format('%.0f', tat), 'PX', math.ceil((tat - now) / 1000))
end
return 0
"""

KEY_PREFIX = "shop:ratelimit:"
# A Redis that has not answered within this is taken as down. Next to the gateway it answers in
# well under a millisecond; this bounds what a stalled one adds to a request.
TIMEOUT_S = 0.25
# While Redis is down: how often one request tries it again.
RETRY_S = 1.0
# Connections per gateway process. A check holds one for a round trip, so a few dozen carry
# thousands of requests a second; past them a check waits (up to TIMEOUT_S) for a free one.
MAX_CONNECTIONS = 32


class RedisStorage:
    def __init__(self, url: str, clock: Callable[[], float] = time.monotonic) -> None:
        pool = BlockingConnectionPool.from_url(
            url,
            max_connections=MAX_CONNECTIONS,
            timeout=TIMEOUT_S,
            socket_timeout=TIMEOUT_S,
            socket_connect_timeout=TIMEOUT_S,
            # No retries inside the client: a failed check fails open at once, and RETRY_S paces
            # the next attempt.
            retry=Retry(NoBackoff(), 0),
        )
        self._client = Redis.from_pool(pool)
        self._script = self._client.register_script(GCRA_SCRIPT)
        self._clock = clock
        self._down = False
        self._retry_at = 0.0
        parts = urlsplit(url)
        self.where = f"{parts.hostname}:{parts.port or 6379}{parts.path or '/0'}"  # never the password

    def limiter(self, rate: Rate, name: str) -> RedisLimiter:
        return RedisLimiter(self, rate, f"{KEY_PREFIX}{name}:")

    async def close(self) -> None:
        await self._client.aclose()

    async def check(self, key: str, interval_us: int, tolerance_us: int, count: bool) -> float:
        """Run the script for one key: the seconds to wait (0.0: pass). Redis down: 0.0."""
        if self._down and self._clock() < self._retry_at:
            RATE_LIMIT_FAILED_OPEN.inc()
            return 0.0
        try:
            wait_us = await self._script(keys=[key], args=[interval_us, tolerance_us, 1 if count else 0])
        except RedisError as exc:
            self._went_down(exc)
            RATE_LIMIT_FAILED_OPEN.inc()
            return 0.0
        if self._down:
            self._down = False
            log.info("rate limits apply again: Redis at %s answers", self.where)
        return int(wait_us) / 1e6

    def _went_down(self, exc: RedisError) -> None:
        self._retry_at = self._clock() + RETRY_S
        if self._down:
            return
        self._down = True
        log.warning(
            "rate limits are off: Redis at %s cannot be reached (%s: %s); requests pass unlimited "
            "until it answers again",
            self.where,
            type(exc).__name__,
            exc,
        )


class RedisLimiter:
    """One rate, its keys under `prefix` in the shared Redis."""

    def __init__(self, storage: RedisStorage, rate: Rate, prefix: str) -> None:
        self._storage = storage
        self._prefix = prefix
        # Whole microseconds, what the script counts in; the burst in whole intervals, so that it
        # stays `rate.burst` requests whatever the rounding.
        self._interval_us = max(1, round(rate.interval_s * 1e6))
        self._tolerance_us = self._interval_us * (rate.burst - 1)

    async def hit(self, key: str) -> float:
        return await self._storage.check(self._prefix + key, self._interval_us, self._tolerance_us, count=True)

    async def blocked_for(self, key: str) -> float:
        return await self._storage.check(self._prefix + key, self._interval_us, self._tolerance_us, count=False)
