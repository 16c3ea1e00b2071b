"""One rate limit across gateways (docs/security.md#rate-limits): two gateway processes counting in one real
redis-server (GATEWAY_RATE_LIMIT_STORAGE=redis://…) hold a key to its rate in total; Redis
stopped, the requests go on (one warning line per gateway, the metric counts them); Redis back,
they are limited again, and no gateway was restarted.

The rate is 5/hour (a burst of 10, then one request each 12 minutes), so that nothing refills
while a test runs, however slow the machine."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import httpx
import pytest

from tests.conftest import require_tool
from tests.harness import Service, Stack, bearer, free_port, gateway_ready, wait_until
from tests.redis_server import RedisServer, available, running_redis

pytestmark = pytest.mark.redis

RATE = {"GATEWAY_RATE_LIMIT": "5/hour"}
BURST = 10
WARNING = "rate limits are off"
BACK = "rate limits apply again"


@dataclass
class TwoGateways:
    redis: RedisServer
    stack: Stack  # the services and the first gateway
    second: Service
    second_url: str

    @property
    def urls(self) -> list[str]:
        return [self.stack.url, self.second_url]

    @property
    def gateways(self) -> list[Service]:
        return [self.stack.gateway, self.second]


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TwoGateways]:
    require_tool(available(), "`redis-server` is not installed (apt-get install -y redis-server)")
    workdir = tmp_path_factory.mktemp("shared-limits")
    with running_redis() as redis:
        stack = Stack(workdir, env={**RATE, "GATEWAY_RATE_LIMIT_STORAGE": redis.url})
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        env = {**stack.gateway.env, "GATEWAY_PORT": str(port), "GATEWAY_PUBLIC_URL": url}
        second = Service("gateway", env, Path(workdir) / "gateway-2.log")
        try:
            stack.start()
            second.start()
            wait_until(partial(gateway_ready, url), time.monotonic() + 30, {"gateway-2": second}, url)
            yield TwoGateways(redis, stack, second, url)
        finally:
            second.stop()
            stack.stop()


async def _statuses(urls: list[str], key: str, count: int) -> list[int]:
    """`count` requests with `key`, taking turns over `urls`, one after the other."""
    async with httpx.AsyncClient(headers=bearer(key), timeout=10) as http:
        return [
            (await http.get(f"{urls[n % len(urls)]}/v1/orders", params={"page_size": 1})).status_code
            for n in range(count)
        ]


def _failed_open(url: str) -> float:
    for line in httpx.get(f"{url}/metrics", timeout=5).text.splitlines():
        if line.startswith("rate_limit_failed_open_total "):
            return float(line.split()[1])
    raise AssertionError("no rate_limit_failed_open_total in /metrics")


async def test_two_gateways_hold_a_key_to_its_rate_in_total(shared: TwoGateways) -> None:
    statuses = await _statuses(shared.urls, shared.stack.keys.secret, 3 * BURST)
    assert statuses.count(200) == BURST, statuses  # counted per process, it would be 2 × BURST
    assert statuses[:BURST] == [200] * BURST
    assert set(statuses[BURST:]) == {429}
    # Another key has its own budget, on either gateway.
    assert await _statuses(shared.urls, shared.stack.keys.read_only, 2) == [200, 200]


async def test_redis_down_fails_open_with_one_warning_and_limits_again_when_it_is_back(shared: TwoGateways) -> None:
    key = shared.stack.keys.other
    limited = await _statuses(shared.urls, key, BURST + 2)
    assert limited[BURST:] == [429, 429]
    pids = [g.proc.pid for g in shared.gateways if g.proc is not None]
    before = [_failed_open(url) for url in shared.urls]

    shared.redis.stop()
    assert await _statuses(shared.urls, key, 10) == [200] * 10  # fail open
    for gateway, url, was in zip(shared.gateways, shared.urls, before, strict=True):
        assert gateway.log().count(WARNING) == 1, gateway.log()[-3000:]  # one line, not one a request
        assert _failed_open(url) - was >= 5

    shared.redis.start()  # empty, on the same port
    # Each gateway asks Redis again at most once a second (gateway/ratelimit_redis.py RETRY_S):
    # until it has, its requests still pass. Then the key's fresh burst runs out, and 429s.
    refused = [False, False]
    deadline = time.monotonic() + 30
    async with httpx.AsyncClient(headers=bearer(key), timeout=10) as http:
        while not all(refused):
            assert time.monotonic() < deadline, "the gateways did not limit again after Redis came back"
            for n, url in enumerate(shared.urls):
                reply = await http.get(f"{url}/v1/orders", params={"page_size": 1})
                refused[n] = refused[n] or reply.status_code == 429
            await asyncio.sleep(0.1)
    for gateway in shared.gateways:
        assert gateway.log().count(BACK) == 1, gateway.log()[-3000:]
        assert gateway.log().count(WARNING) == 1
    assert [g.proc.pid for g in shared.gateways if g.proc is not None] == pids  # nobody restarted
    assert all(g.running for g in shared.gateways)
