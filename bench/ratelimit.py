"""What a rate-limit check costs a request (docs/security.md#rate-limits): the gateway's limiter in its own memory
(`memory://`) against the one every replica shares in Redis (`redis://…`: one EVALSHA round trip
to a redis-server on loopback, started here). Measured in this process, on uvloop as the
gateway runs, with the gateway's own limiter classes:

- one check at a time: the time a request waits for its check (for Redis, a round trip);
- 64 checks at once (as under load): the gateway's CPU per check, and Redis's own CPU per check.

Every check passes (the rate is far above what is asked), over 1,000 keys; each figure is the
median of `runs` windows of about `budget_s` each."""

from __future__ import annotations

import asyncio
import os
import statistics
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import uvloop
from prometheus_client import REGISTRY

from gateway.ratelimit import Limiter, Rate, RateLimiter
from gateway.ratelimit_redis import RedisStorage
from tests.redis_server import RedisServer, available

KEYS = [f"key_{n:04d}" for n in range(1000)]
NEVER_REFUSED = Rate(10**9, 1.0)
CONCURRENCY = 64


def unavailable() -> str | None:
    return None if available() else "redis-server is not installed (apt-get install -y redis-server)"


def run(budget_s: float, runs: int, workdir: Path) -> dict[str, Any]:
    """{"rows": [{"storage", "mode", "us_per_check", "cpu_us_per_check", "redis_cpu_us_per_check"}],
    "redis_vs_memory": {"sequential": …, "concurrent": …} (how many times memory's cost)}."""
    workdir.mkdir(parents=True, exist_ok=True)
    server = RedisServer(workdir)
    server.start()
    try:
        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            rows = runner.run(_measure(server, budget_s, runs))
    finally:
        server.stop()
    by = {(r["storage"], r["mode"]): r for r in rows}
    return {
        "rows": rows,
        "redis_vs_memory": {
            mode: round(by[("redis", mode)]["cpu_us_per_check"] / by[("memory", mode)]["cpu_us_per_check"], 1)
            for mode in ("sequential", "concurrent")
        },
    }


async def _measure(server: RedisServer, budget_s: float, runs: int) -> list[dict[str, Any]]:
    storage = RedisStorage(server.url)
    limiters: dict[str, RateLimiter] = {
        "memory": Limiter(NEVER_REFUSED),
        "redis": storage.limiter(NEVER_REFUSED, "bench"),
    }
    rows = []
    try:
        for name, limiter in limiters.items():
            await _checks(limiter, 200)  # warm: connections open, the script loaded
            for mode, window in (("sequential", _sequential), ("concurrent", _concurrent)):
                samples = [
                    await _window(limiter, window, budget_s, server if name == "redis" else None) for _ in range(runs)
                ]
                rows.append(
                    {
                        "storage": name,
                        "mode": mode,
                        **{key: round(statistics.median(s[key] for s in samples), 2) for key in samples[0]},
                    }
                )
    finally:
        await storage.close()
    return rows


async def _checks(limiter: RateLimiter, count: int, start: int = 0) -> None:
    for n in range(start, start + count):
        wait = await limiter.hit(KEYS[n % len(KEYS)])
        assert wait == 0.0, "a check was refused: the bench's rate is too low"


async def _sequential(limiter: RateLimiter, count: int) -> None:
    await _checks(limiter, count)


async def _concurrent(limiter: RateLimiter, count: int) -> None:
    share = max(1, count // CONCURRENCY)
    await asyncio.gather(*(_checks(limiter, share, n * share) for n in range(CONCURRENCY)))


Window = Callable[[RateLimiter, int], Awaitable[None]]


async def _window(
    limiter: RateLimiter, window: Window, budget_s: float, server: RedisServer | None
) -> dict[str, float]:
    count = CONCURRENCY * 4
    while True:  # grow the window until it lasts about budget_s
        started, cpu, redis_cpu = time.perf_counter(), time.process_time(), _cpu_s(server)
        failed_open = _failed_open()
        await window(limiter, count)
        elapsed = time.perf_counter() - started
        if _failed_open() != failed_open:
            raise RuntimeError("Redis did not answer in time during the window: its checks were not measured")
        redis_used = _cpu_s(server) - redis_cpu
        if (elapsed >= budget_s and (server is None or redis_used >= _MIN_REDIS_CPU_S)) or count >= 10_000_000:
            done = count if window is _sequential else max(1, count // CONCURRENCY) * CONCURRENCY
            return {
                "us_per_check": elapsed / done * 1e6,
                "cpu_us_per_check": (time.process_time() - cpu) / done * 1e6,
                "redis_cpu_us_per_check": redis_used / done * 1e6,
            }
        count = int(count * max(2.0, budget_s / max(elapsed, 1e-6) * 1.2))


def _failed_open() -> float:
    return REGISTRY.get_sample_value("rate_limit_failed_open_total") or 0.0


# /proc counts a process's CPU time in clock ticks (10 ms): a window in which Redis used less than
# a few of them would give its CPU per check as 0, or twice what it is. Windows grow until it has.
_MIN_REDIS_CPU_S = 5 / os.sysconf("SC_CLK_TCK")


def _cpu_s(server: RedisServer | None) -> float:
    """redis-server's CPU time so far (user + system), from /proc; 0 without one."""
    if server is None or server.proc is None:
        return 0.0
    fields = Path(f"/proc/{server.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
