"""What the soak samples every few seconds, from outside the processes: each process's resident
memory and open files (/proc), the PostgreSQL connections (pg_stat_activity), and each
process's event loop lag (its `event_loop_lag_seconds` histogram, common/loop_lag.py, read from
its /metrics)."""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg
import httpx
from prometheus_client.parser import text_string_to_metric_families

_LAG = "event_loop_lag_seconds"


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def open_files(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


@dataclass(frozen=True)
class Lag:
    """A process's lag histogram as read: observations, their sum, count at or below each bound."""

    count: float
    total: float
    buckets: tuple[tuple[float, float], ...]

    def since(self, before: Lag) -> tuple[float, float] | None:
        """(mean, p99's bucket bound) of the observations between `before` and this, in seconds."""
        count = self.count - before.count
        if count <= 0:
            return None
        earlier = dict(before.buckets)
        wanted = 0.99 * count
        p99 = next(
            (bound for bound, seen in self.buckets if seen - earlier.get(bound, 0.0) >= wanted), self.buckets[-1][0]
        )
        return (self.total - before.total) / count, p99


def parse_lag(text: str) -> Lag | None:
    for family in text_string_to_metric_families(text):
        if family.name != _LAG:
            continue
        count = total = 0.0
        buckets: list[tuple[float, float]] = []
        for sample in family.samples:
            if sample.name.endswith("_count"):
                count = sample.value
            elif sample.name.endswith("_sum"):
                total = sample.value
            elif sample.name.endswith("_bucket"):
                bound = float(sample.labels["le"])
                buckets.append((bound, sample.value))
        finite = tuple(sorted((b, v) for b, v in buckets if not math.isinf(b)))
        return Lag(count, total, finite)
    return None


@dataclass
class Sample:
    at_s: float  # since the start of the run
    rss_kib: dict[str, int] = field(default_factory=dict)
    open_files: dict[str, int] = field(default_factory=dict)
    # Connections per database and application, e.g. "orders/health probe".
    db_connections: dict[str, int] = field(default_factory=dict)
    lag: dict[str, Lag] = field(default_factory=dict)


_CONNECTIONS = """
SELECT datname, coalesce(nullif(application_name, ''), 'pool') AS app, count(*) AS n
FROM pg_stat_activity WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()
GROUP BY 1, 2
"""


class Sampler:
    """`pids`: the processes by name; `metrics`: the /metrics URL of each (where it has one)."""

    def __init__(
        self, pids: dict[str, int], metrics: dict[str, str], server_url: str, databases: dict[str, str]
    ) -> None:
        self.pids = pids
        self.metrics = metrics
        self.server_url = server_url
        self.databases = databases  # database name → what to call it in the figures
        self.samples: list[Sample] = []
        self.scrape_failures = 0
        self.started = time.monotonic()

    async def sample(self, http: httpx.AsyncClient) -> Sample:
        taken = Sample(round(time.monotonic() - self.started, 2))
        for name, pid in self.pids.items():
            taken.rss_kib[name] = rss_kib(pid)
            taken.open_files[name] = open_files(pid)
        for name, url in self.metrics.items():
            try:
                lag = parse_lag((await http.get(url)).text)
            except httpx.HTTPError:
                self.scrape_failures += 1  # this interval's lag of that process is not known
                continue
            if lag is not None:
                taken.lag[name] = lag
        conn = await asyncpg.connect(self.server_url)
        try:
            for row in await conn.fetch(_CONNECTIONS):
                database = self.databases.get(row["datname"], row["datname"])
                taken.db_connections[f"{database}/{row['app']}"] = int(row["n"])
        finally:
            await conn.close()
        self.samples.append(taken)
        return taken
