"""How late a process's event loop runs what is due: the lag every request of the process waits
on top of its own work, and the first sign of a loop kept busy by something that blocks.

    event_loop_lag_seconds    histogram of the lateness of a timer set every LAG_INTERVAL_S

Every gRPC service and the gateway run one (their /metrics show it); the soak (bench/soak.py)
reads it from each process.
"""

from __future__ import annotations

import asyncio

from prometheus_client import Histogram

LAG_INTERVAL_S = 0.5

LOOP_LAG = Histogram(
    "event_loop_lag_seconds",
    "How late the event loop ran a timer that was due",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)


async def _measure(interval_s: float) -> None:
    loop = asyncio.get_running_loop()
    while True:
        due = loop.time() + interval_s
        await asyncio.sleep(interval_s)
        LOOP_LAG.observe(max(0.0, loop.time() - due))


def monitor_loop_lag(interval_s: float = LAG_INTERVAL_S) -> asyncio.Task[None]:
    """Start measuring on the running loop; cancel the task to stop."""
    return asyncio.create_task(_measure(interval_s), name="event loop lag")
