"""Rate limits counted in one Redis that every gateway replica shares (docs/security.md#rate-limits,
`GATEWAY_RATE_LIMIT_STORAGE=redis://host:port/n`): a key gets its rate in total, however many
gateways serve it.

The same GCRA as the in-memory limiter (gateway/ratelimit.py), as a Lua script that Redis runs
atomically: one EVALSHA per check, read-and-update in one step, so that two gateways counting
the same key at the same instant cannot both take the last request. The checks of the requests
that arrive together share a round trip: while one batch is on its way, the next gathers, and
goes as one pipeline (per check, redis-py's own overhead is several times the script's). Time is
Redis's own clock (`TIME`), so the gateways' clocks need not agree. A key's entry expires once
its bucket is full again, so Redis holds only keys that are being limited.

Redis unreachable (refused, timed out, any Redis error): the request is let through unlimited
(fail open) — a limiter must not turn a Redis outage into an API outage. One warning line when
an outage begins and one line when Redis answers again; `rate_limit_failed_open_total` (the
gateway's /metrics) counts the checks skipped. While Redis is down it is asked again at most
once every RETRY_S: the requests in between neither wait for a timeout nor open connections.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import time
from collections.abc import Callable
from typing import NamedTuple
from urllib.parse import urlsplit

from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import NoScriptError, RedisError

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
# well under a millisecond, but on a machine loaded far past its cores a batch was seen to wait
# over 250 ms; this bounds what a stalled Redis adds to the requests of one batch.
TIMEOUT_S = 1.0
# While Redis is down: how often one request tries it again.
RETRY_S = 1.0


class RedisStorage:
    def __init__(self, url: str, clock: Callable[[], float] = time.monotonic) -> None:
        # No retries inside the client: a failed batch fails open at once, and RETRY_S paces the
        # next attempt. One batch is in flight at a time, so one connection is all it uses.
        self._client = Redis.from_url(
            url,
            socket_timeout=TIMEOUT_S,
            socket_connect_timeout=TIMEOUT_S,
            retry=Retry(NoBackoff(), 0),
            max_connections=2,
        )
        self._sha = hashlib.sha1(GCRA_SCRIPT.encode()).hexdigest()
        self._clock = clock
        self._down = False
        self._retry_at = 0.0
        self._queue: list[_Check] = []
        self._wake = asyncio.Event()
        self._sender: asyncio.Task[None] | None = None
        parts = urlsplit(url)
        self.where = f"{parts.hostname}:{parts.port or 6379}{parts.path or '/0'}"  # never the password

    def limiter(self, rate: Rate, name: str) -> RedisLimiter:
        return RedisLimiter(self, rate, f"{KEY_PREFIX}{name}:")

    async def close(self) -> None:
        if self._sender is not None:
            self._sender.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sender
        self._answer(self._queue, None)
        await self._client.aclose()

    async def check(self, key: str, interval_us: int, tolerance_us: int, count: bool) -> float:
        """Run the script for one key: the seconds to wait (0.0: pass). Redis down: 0.0."""
        if self._down and self._clock() < self._retry_at:
            RATE_LIMIT_FAILED_OPEN.inc()
            return 0.0
        answer: asyncio.Future[int | None] = asyncio.get_running_loop().create_future()
        self._queue.append(_Check((key, interval_us, tolerance_us, 1 if count else 0), answer))
        if self._sender is None:
            self._sender = asyncio.create_task(self._send_batches(), name="rate-limit batches")
        self._wake.set()
        wait_us = await answer
        if wait_us is None:
            RATE_LIMIT_FAILED_OPEN.inc()
            return 0.0
        return wait_us / 1e6

    async def _send_batches(self) -> None:
        """The checks that came while a batch was on its way go together in the next one: one
        round trip, pipelined, for however many requests are being checked at once."""
        while True:
            await self._wake.wait()
            self._wake.clear()
            batch, self._queue = self._queue, []
            if not batch:
                continue
            try:
                waits: list[int] | None = await self._run(batch)
            except RedisError as exc:
                self._went_down(exc)
                waits = None
            except Exception:  # a bug here must not leave requests waiting for ever
                log.exception("rate-limit batch failed; its requests pass unlimited")
                waits = None
            else:
                if self._down:
                    self._down = False
                    log.info("rate limits apply again: Redis at %s answers", self.where)
            self._answer(batch, waits)

    async def _run(self, batch: list[_Check]) -> list[int]:
        replies = await self._pipeline(batch)
        if any(isinstance(reply, NoScriptError) for reply in replies):
            # A Redis that restarted has forgotten the script: load it, send the batch again.
            await self._client.script_load(GCRA_SCRIPT)
            replies = await self._pipeline(batch)
        waits = []
        for reply in replies:
            if not isinstance(reply, int):
                raise reply if isinstance(reply, RedisError) else RedisError(f"unexpected reply {reply!r}")
            waits.append(reply)
        return waits

    async def _pipeline(self, batch: list[_Check]) -> list[object]:
        pipe = self._client.pipeline(transaction=False)
        for check in batch:
            pipe.evalsha(self._sha, 1, *check.args)
        replies: list[object] = await pipe.execute(raise_on_error=False)
        return replies

    @staticmethod
    def _answer(batch: list[_Check], waits: list[int] | None) -> None:
        for n, check in enumerate(batch):
            if not check.answer.done():  # its request may have gone away
                check.answer.set_result(None if waits is None else waits[n])

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


class _Check(NamedTuple):
    args: tuple[str, int, int, int]  # the key, then the script's ARGV
    answer: asyncio.Future[int | None]  # the µs to wait, or None: fail open


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
