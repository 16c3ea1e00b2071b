"""The soak's figures from its samples, its clients' tally and the audit of the books.

Growth after the warm-up is read off a least-squares line through the samples after it (one
sample's noise — a garbage collection, a burst of connections — does not make a trend):
`growth_pct` is how much the line rises from the end of the warm-up to the end of the run,
in per cent of where it starts. The goal of the run: under GROWTH_GOAL_PCT for the resident
memory and the open files of every process, no error, nothing lost.
"""

from __future__ import annotations

import itertools
import statistics
from collections import defaultdict
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from bench.soak.samples import Sample
from bench.soak.shoppers import Tally
from bench.soak.watchers import Watcher
from tests.fault.ledger import Audit

if TYPE_CHECKING:
    from bench.soak.run import Plan

GROWTH_GOAL_PCT = 10.0


def line(points: Sequence[tuple[float, float]]) -> tuple[float, float]:
    """Least-squares (intercept, slope) through (t, value) points."""
    if len(points) < 2:
        return (points[0][1] if points else 0.0), 0.0
    mean_t = statistics.fmean(t for t, _ in points)
    mean_v = statistics.fmean(v for _, v in points)
    var = sum((t - mean_t) ** 2 for t, _ in points)
    slope = sum((t - mean_t) * (v - mean_v) for t, v in points) / var if var else 0.0
    return mean_v - slope * mean_t, slope


def growth_pct(points: Sequence[tuple[float, float]]) -> float:
    if len(points) < 2:
        return 0.0
    intercept, slope = line(points)
    start, end = points[0][0], points[-1][0]
    at_start = intercept + slope * start
    return 100.0 * slope * (end - start) / at_start if at_start else 0.0


def lag_intervals(samples: Sequence[Sample]) -> dict[str, list[tuple[float, float, float]]]:
    """Per process and sampling interval: (end of the interval s, mean lag ms, p99 lag ms)."""
    found: dict[str, list[tuple[float, float, float]]] = defaultdict(list)
    for before, after in itertools.pairwise(samples):
        for name, lag in after.lag.items():
            earlier = before.lag.get(name)
            got = lag.since(earlier) if earlier is not None else None
            if got is not None:
                found[name].append((after.at_s, round(got[0] * 1000, 2), round(got[1] * 1000, 2)))
    return dict(found)


def _process(
    samples: Sequence[Sample], name: str, warm_up_s: float, lags: list[tuple[float, float, float]]
) -> dict[str, Any]:
    steady = [s for s in samples if s.at_s >= warm_up_s and name in s.rss_kib]
    rss = [(s.at_s, s.rss_kib[name] / 1024) for s in steady]
    files = [(s.at_s, float(s.open_files[name])) for s in steady]
    steady_lags = [lag for lag in lags if lag[0] >= warm_up_s]
    return {
        "rss_mib_after_warm_up": round(rss[0][1], 1) if rss else None,
        "rss_mib_end": round(rss[-1][1], 1) if rss else None,
        "rss_growth_pct": round(growth_pct(rss), 2),
        "open_files_after_warm_up": int(files[0][1]) if files else None,
        "open_files_end": int(files[-1][1]) if files else None,
        "open_files_growth_pct": round(growth_pct(files), 2),
        "loop_lag_mean_ms": round(statistics.fmean(m for _, m, _ in steady_lags), 2) if steady_lags else None,
        "loop_lag_p99_ms_worst_interval": max((p for _, _, p in steady_lags), default=None),
    }


def _connections(samples: Sequence[Sample]) -> dict[str, dict[str, int]]:
    keys = sorted({key for s in samples for key in s.db_connections})
    return {
        key: {
            "min": min(s.db_connections.get(key, 0) for s in samples),
            "max": max(s.db_connections.get(key, 0) for s in samples),
            "end": samples[-1].db_connections.get(key, 0),
        }
        for key in keys
    }


def _watchers(watchers: Sequence[Watcher]) -> dict[str, dict[str, int]]:
    by_channel: dict[str, dict[str, int]] = {}
    for watcher in watchers:
        into = by_channel.setdefault(watcher.channel, {})
        for key, value in watcher.figures().items():
            into[key] = into.get(key, 0) + value
    return by_channel


def figures(
    plan: Plan,
    samples: Sequence[Sample],
    tally: Tally,
    watchers: Sequence[Watcher],
    books: Audit,
    channel_states: dict[str, list[str]],
) -> dict[str, Any]:
    warm_up_s = plan.seconds * plan.warm_up_share
    lags = lag_intervals(samples)
    names = list(samples[0].rss_kib) if samples else []
    processes = {name: _process(samples, name, warm_up_s, lags.get(name, [])) for name in names}
    unanswered = sum(1 for order_id in tally.told.values() if order_id is None)
    lost = books.lost + sum(w.lost for w in watchers)
    failed = {"TRANSIENT_FAILURE", "SHUTDOWN"}
    dropped = {name: states for name, states in channel_states.items() if failed & set(states)}
    creates = sorted(tally.create_ms) or [0.0]
    worst_rss = max((p["rss_growth_pct"] for p in processes.values()), default=0.0)
    worst_files = max((p["open_files_growth_pct"] for p in processes.values()), default=0.0)
    return {
        "seconds": plan.seconds,
        "warm_up_s": warm_up_s,
        "orders_per_s": plan.orders_per_s,
        "shoppers": plan.shoppers,
        "watchers": len(watchers),
        "samples": len(samples),
        "requests": sum(tally.requests.values()),
        "requests_by_kind": dict(tally.requests.most_common()),
        "errors": len(tally.errors) + len(dropped),
        "first_errors": tally.errors[:10],
        "lost": lost,
        "unanswered_creates": unanswered,
        "orders_in_db": books.orders,
        "audit_problems": len(books.problems),
        "first_audit_problems": books.problems[:10],
        "create_p50_ms": round(creates[len(creates) // 2], 1),
        "create_p99_ms": round(creates[min(len(creates) - 1, int(0.99 * len(creates)))], 1),
        "watchers_by_channel": _watchers(watchers),
        "idle_channel_states": channel_states,
        "processes": processes,
        "db_connections": _connections(samples),
        "goals": {
            f"rss_growth_under_{GROWTH_GOAL_PCT:g}_pct": worst_rss < GROWTH_GOAL_PCT,
            f"open_files_growth_under_{GROWTH_GOAL_PCT:g}_pct": worst_files < GROWTH_GOAL_PCT,
            "no_errors": not tally.errors and not dropped,
            "none_lost": lost == 0 and unanswered == 0 and not books.problems,
        },
        "series": _series(samples, lags),
    }


def _series(samples: Sequence[Sample], lags: dict[str, list[tuple[float, float, float]]]) -> dict[str, Any]:
    """The samples themselves, for the plot and for anyone who wants to look again."""
    return {
        "at_s": [s.at_s for s in samples],
        "rss_mib": {
            n: [round(s.rss_kib.get(n, 0) / 1024, 1) for s in samples] for n in (samples[0].rss_kib if samples else {})
        },
        "open_files": {
            n: [s.open_files.get(n, 0) for s in samples] for n in (samples[0].open_files if samples else {})
        },
        "db_connections": {
            key: [s.db_connections.get(key, 0) for s in samples]
            for key in sorted({key for s in samples for key in s.db_connections})
        },
        "loop_lag_p99_ms": {name: [[at, p99] for at, _, p99 in points] for name, points in lags.items()},
    }
