from __future__ import annotations

import pytest

from gateway.ratelimit import PRUNE_AT, Limiter, Rate, retry_after


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.mark.parametrize(
    ("text", "amount", "period"), [("100/second", 100, 1.0), ("6000 per minute", 6000, 60.0), ("10/2seconds", 10, 2.0)]
)
def test_rates_in_the_limits_notation(text: str, amount: int, period: float) -> None:
    assert Rate.parse(text) == Rate(amount, period)


@pytest.mark.parametrize("text", ["", "fast", "0/second", "-1/second", "10/fortnight"])
def test_what_is_not_a_rate(text: str) -> None:
    with pytest.raises(ValueError, match=r"\w"):
        Rate.parse(text)


async def test_a_burst_of_twice_the_rate_then_the_rate() -> None:
    clock = Clock()
    limiter = Limiter(Rate(10, 1.0), clock)
    assert [await limiter.hit("k") for _ in range(20)] == [0.0] * 20
    wait = await limiter.hit("k")
    assert wait == pytest.approx(0.1)  # one request's worth of time
    assert await limiter.hit("other") == 0.0  # keys are counted apart
    clock.now += 0.1
    assert await limiter.hit("k") == 0.0
    assert await limiter.hit("k") > 0
    clock.now += 1.0  # 10 more
    assert [await limiter.hit("k") for _ in range(10)] == [0.0] * 10
    assert await limiter.hit("k") > 0


async def test_a_refused_request_does_not_count() -> None:
    clock = Clock()
    limiter = Limiter(Rate(1, 1.0), clock)
    assert [await limiter.hit("k") for _ in range(2)] == [0.0, 0.0]
    for _ in range(100):
        assert await limiter.hit("k") > 0  # hammering does not push the wait further out
    clock.now += 1.0
    assert await limiter.hit("k") == 0.0


async def test_blocked_for_looks_without_counting() -> None:
    clock = Clock()
    limiter = Limiter(Rate(2, 60.0), clock)
    assert await limiter.blocked_for("addr") == 0.0
    for _ in range(4):
        assert await limiter.blocked_for("addr") == 0.0
        await limiter.hit("addr")
    assert await limiter.blocked_for("addr") == pytest.approx(30.0)
    assert await limiter.blocked_for("addr") == pytest.approx(30.0)
    clock.now += 30
    assert await limiter.blocked_for("addr") == 0.0


async def test_idle_keys_are_forgotten_when_the_table_grows() -> None:
    clock = Clock()
    limiter = Limiter(Rate(1, 1.0), clock)
    for n in range(PRUNE_AT):
        await limiter.hit(f"k{n}")
    clock.now += 10
    await limiter.hit("new")
    assert len(vars(limiter)["_tat"]) <= 2


@pytest.mark.parametrize(("wait", "header"), [(0.01, "1"), (1.0, "1"), (1.2, "2"), (59.9, "60")])
def test_retry_after_is_whole_seconds(wait: float, header: str) -> None:
    assert retry_after(wait) == header
