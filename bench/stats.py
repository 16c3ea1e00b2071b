"""Latency summaries and the median of repeated runs."""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import Any


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0-100) of `values`, nearest-rank on the sorted values; 0 when empty."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


@dataclass(frozen=True)
class Run:
    """One measured window of a closed-loop load: throughput and latency in milliseconds."""

    rps: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    requests: int
    errors: int

    @classmethod
    def from_latencies(cls, latencies_s: Sequence[float], seconds: float, errors: int = 0) -> Run:
        return cls(
            rps=len(latencies_s) / seconds if seconds > 0 else 0.0,
            p50_ms=percentile(latencies_s, 50) * 1000,
            p90_ms=percentile(latencies_s, 90) * 1000,
            p99_ms=percentile(latencies_s, 99) * 1000,
            requests=len(latencies_s),
            errors=errors,
        )

    def to_json(self) -> dict[str, Any]:
        return {k: round(v, 3) if isinstance(v, float) else v for k, v in asdict(self).items()}


def median_run(runs: Iterable[Run]) -> Run:
    """Each figure is the median of that figure over the runs (errors: their sum)."""
    runs = list(runs)
    if not runs:
        return Run(0.0, 0.0, 0.0, 0.0, 0, 0)
    return Run(
        rps=statistics.median(r.rps for r in runs),
        p50_ms=statistics.median(r.p50_ms for r in runs),
        p90_ms=statistics.median(r.p90_ms for r in runs),
        p99_ms=statistics.median(r.p99_ms for r in runs),
        requests=sum(r.requests for r in runs),
        errors=sum(r.errors for r in runs),
    )


@dataclass(frozen=True)
class Delays:
    """How long after a change the watchers saw it, in milliseconds."""

    p50_ms: float
    p99_ms: float
    mean_ms: float
    max_ms: float
    seen: int
    missed: int

    @classmethod
    def from_seconds(cls, delays_s: Sequence[float], missed: int) -> Delays:
        return cls(
            p50_ms=percentile(delays_s, 50) * 1000,
            p99_ms=percentile(delays_s, 99) * 1000,
            mean_ms=statistics.fmean(delays_s) * 1000 if delays_s else 0.0,
            max_ms=max(delays_s, default=0.0) * 1000,
            seen=len(delays_s),
            missed=missed,
        )

    def to_json(self) -> dict[str, Any]:
        return {k: round(v, 3) if isinstance(v, float) else v for k, v in asdict(self).items()}


def median_fields(rows: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """Field by field, the median of numbers over rows (the sum for `requests` and `errors`)."""
    rows = list(rows)
    if not rows:
        return {}
    merged: dict[str, Any] = {}
    for key in rows[0]:
        values = [row[key] for row in rows if isinstance(row.get(key), int | float)]
        if key in ("requests", "errors"):
            merged[key] = sum(values)
        elif values:
            merged[key] = round(statistics.median(values), 3)
    return merged
