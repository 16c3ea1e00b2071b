"""The shared limiter (gateway/ratelimit_redis.py) against a real redis-server of the test's own:
the same GCRA as in memory, one count for every process that uses the same Redis, and fail-open
through an outage — one warning, a metric, and limits again once Redis is back."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

import pytest
from prometheus_client import REGISTRY

from gateway.ratelimit import Rate
from gateway.ratelimit_redis import KEY_PREFIX, RETRY_S, RedisStorage
from tests.redis_server import RedisServer

pytestmark = pytest.mark.redis

# Slow enough that no request's worth of time passes during a test: 720 s each, a burst of 10.
SLOW = Rate(5, 3600.0)


class Clock:
    """The storage's clock of outages (when to try Redis again), moved by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def storage(redis: RedisServer) -> AsyncIterator[RedisStorage]:
    opened = RedisStorage(redis.url)
    yield opened
    await opened.close()


def _failed_open() -> float:
    return REGISTRY.get_sample_value("rate_limit_failed_open_total") or 0.0


async def test_a_burst_of_twice_the_rate_then_the_wait_of_one_request(storage: RedisStorage) -> None:
    limiter = storage.limiter(SLOW, "key")
    assert [await limiter.hit("k") for _ in range(10)] == [0.0] * 10
    wait = await limiter.hit("k")
    assert wait == pytest.approx(720, abs=5)
    assert await storage.limiter(SLOW, "key").hit("other") == 0.0  # keys are counted apart
    assert await storage.limiter(SLOW, "address").hit("k") == 0.0  # and so are limiters


async def test_a_refused_request_does_not_count(storage: RedisStorage) -> None:
    limiter = storage.limiter(Rate(1, 3600.0), "key")
    assert [await limiter.hit("k") for _ in range(2)] == [0.0, 0.0]
    first = await limiter.hit("k")
    for _ in range(50):
        assert await limiter.hit("k") <= first  # hammering does not push the wait further out


async def test_blocked_for_looks_without_counting(storage: RedisStorage) -> None:
    limiter = storage.limiter(Rate(2, 3600.0), "failures")
    for _ in range(4):
        assert await limiter.blocked_for("addr") == 0.0
        assert await limiter.hit("addr") == 0.0
    assert await limiter.blocked_for("addr") == pytest.approx(1800, abs=5)
    assert await limiter.blocked_for("addr") == pytest.approx(1800, abs=5)


async def test_every_process_on_one_redis_counts_in_one_bucket(redis: RedisServer) -> None:
    """Two storages are two gateways: 10 requests in all, however they are spread."""
    first, second = RedisStorage(redis.url), RedisStorage(redis.url)
    try:
        one, two = first.limiter(SLOW, "key"), second.limiter(SLOW, "key")
        answers = [await (one if n % 2 else two).hit("shared") for n in range(14)]
        assert answers[:10] == [0.0] * 10
        assert all(wait > 0 for wait in answers[10:])
    finally:
        await first.close()
        await second.close()


async def test_an_entry_lives_only_until_its_bucket_is_full_again(redis: RedisServer, storage: RedisStorage) -> None:
    await storage.limiter(SLOW, "key").hit("k")
    with redis.client() as client:
        stored = client.get(f"{KEY_PREFIX}key:k")
        ttl_ms = client.pttl(f"{KEY_PREFIX}key:k")
    assert stored is not None
    assert stored.isdigit()  # whole microseconds, not 1.7e+15
    assert 0 < ttl_ms <= 720_000


async def test_an_outage_fails_open_with_one_warning_and_limits_again_when_redis_is_back(
    redis: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    clock = Clock()
    storage = RedisStorage(redis.url, clock=clock)
    limiter = storage.limiter(SLOW, "key")
    try:
        assert [await limiter.hit("k") for _ in range(11)][-1] > 0  # limited
        redis.stop()
        before = _failed_open()
        with caplog.at_level(logging.INFO, logger="gateway.ratelimit_redis"):
            assert [await limiter.hit("k") for _ in range(5)] == [0.0] * 5  # open
            clock.now += RETRY_S  # asked again, still down: the same outage
            assert [await limiter.hit("k") for _ in range(5)] == [0.0] * 5
            assert _failed_open() - before == 10
            warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
            assert len(warnings) == 1, caplog.text
            assert "rate limits are off" in warnings[0].getMessage()
            redis.start()  # empty: what it counted is gone
            assert await limiter.hit("k") == 0.0  # within RETRY_S of the last try: not asked yet
            clock.now += RETRY_S
            answers = [await limiter.hit("k") for _ in range(11)]
            assert answers[:10] == [0.0] * 10
            assert answers[10] > 0  # limited again, by the same storage: nothing restarted
        assert "rate limits apply again" in caplog.text
        assert _failed_open() - before == 11
    finally:
        await storage.close()


def test_the_password_is_never_where_the_logs_say_redis_is() -> None:
    storage = RedisStorage("redis://:hunter2-secret@redis.internal:6380/3")
    assert storage.where == "redis.internal:6380/3"
    assert "hunter2" not in storage.where


async def test_redis_errors_other_than_connection_also_fail_open(storage: RedisStorage, redis: RedisServer) -> None:
    """A Redis that refuses the script (here: a wrong type under the key) lets the request through."""
    with redis.client() as client:
        client.lpush(f"{KEY_PREFIX}key:k", "x")
    assert await storage.limiter(SLOW, "key").hit("k") == 0.0
