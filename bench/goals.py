"""The issues' goals, checked against one run's figures. Reported, never asserted: a missed goal
is a finding to explain (with a profile), not a failed build.

Each goal names the condition it is judged at (c=32, 1,000 watchers…). Where the run did not
measure that condition — the quick run watches with 10 clients, not 1,000 — the nearest figure
is judged and the goal's `basis` says what it really was."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from tests.order_statements import MAX_COMMITS, MAX_STATEMENTS, MAX_STATEMENTS_KEYED

Results = dict[str, Any]


@dataclass(frozen=True)
class Figure:
    value: float
    basis: str = ""  # set when the figure was measured otherwise than the goal says


Measure = Callable[[Results], Figure | None]


def _figure(value: object, basis: str = "") -> Figure | None:
    return Figure(float(value), basis) if isinstance(value, int | float) else None


def _hop_ratio(payload: str, other: str) -> Measure:
    def measure(results: Results) -> Figure | None:
        for row in results.get("hop", {}).get("ratios", []):
            if (row["payload"], row["concurrency"]) == (payload, 32):
                return _figure(row.get(f"grpc_vs_{other}"))
        return None

    return measure


def _e2e_row(results: Results, concurrency: int) -> dict[str, Any] | None:
    rows = results.get("e2e", {}).get("results", [])
    return next((r for r in rows if r["name"] == "orders" and r["concurrency"] == concurrency), None)


def _e2e(field: str, concurrency: int) -> Measure:
    def measure(results: Results) -> Figure | None:
        row = _e2e_row(results, concurrency)
        return _figure(row.get(field)) if row else None

    return measure


def _e2e_share(results: Results) -> Figure | None:
    ratios = results.get("e2e", {}).get("ratios", [])
    return next((_figure(r["share"]) for r in ratios if r["baseline"] == "plain" and r["concurrency"] == 32), None)


def _tracing_share(results: Results) -> Figure | None:
    ratios = results.get("e2e", {}).get("ratios", [])
    wanted = ("orders_traced", "orders", 32)
    return next((_figure(r["share"]) for r in ratios if (r["name"], r["baseline"], r["concurrency"]) == wanted), None)


def _cpu_per_order_ms(results: Results) -> Figure | None:
    """The three processes' CPU per order, together (on SQLite the database's work is theirs)."""
    row = _e2e_row(results, 32)
    kinds = ("gateway_cpu_us", "order_service_cpu_us", "payment_service_cpu_us")
    if not row or any(row.get(kind) is None for kind in kinds):
        return None
    return Figure(sum(row[kind] for kind in kinds) / 1000)


def _delay(channel: str, field: str, watchers: int) -> Measure:
    """`field` of `channel` at `watchers` watchers, else at the nearest count measured."""

    def measure(results: Results) -> Figure | None:
        rows = [r for r in results.get("push", {}).get("delay", []) if r["channel"] == channel and r.get("seen")]
        if not rows:
            return None
        row = min(rows, key=lambda r: abs(r["watchers"] - watchers))
        basis = "" if row["watchers"] == watchers else f"at {row['watchers']:,} watchers"
        return _figure(row[field], basis)

    return measure


def _short_poll_mean(results: Results) -> Figure | None:
    rows = [r for r in results.get("push", {}).get("delay", []) if r["channel"] == "short_poll" and r.get("seen")]
    # The crowd of 100 (or the largest crowd up to it) samples the interval best.
    rows = [r for r in rows if r["watchers"] <= 100] or rows
    return _figure(max(rows, key=lambda r: r["seen"])["mean_ms"]) if rows else None


def _idle(channel: str) -> Measure:
    def measure(results: Results) -> Figure | None:
        row = next((r for r in results.get("push", {}).get("idle", []) if r["channel"] == channel), None)
        return _figure(row["requests_per_min"]) if row else None

    return measure


def _memory(channel: str) -> Measure:
    def measure(results: Results) -> Figure | None:
        row = next((r for r in results.get("push", {}).get("memory", []) if r["channel"] == channel), None)
        if not row:
            return None
        basis = "" if row["watchers"] >= 1000 else f"at {row['watchers']:,} watchers"
        return _figure(row["kib_per_watcher"], basis)

    return measure


def _cross_replica(field: str) -> Measure:
    """The worse of gRPC WatchOrder and SSE, each on the replica that did not commit."""

    def measure(results: Results) -> Figure | None:
        rows = [r for r in results.get("push_replicas", {}).get("delay", []) if r["replica"] == "cross"]
        if not rows or any(not r.get("seen") for r in rows):
            return None
        worst = max(rows, key=lambda r: r[field])
        return Figure(float(worst[field]), f"{worst['channel']}, {worst['seen']} changes")

    return measure


_BOUND = re.compile(r"(≥|>|≤|<) ?(\d[\d,.]*) ?(%|×|ms|s\b|KiB)?")
_RANGE = re.compile(r"\((\d[\d,.]*)-(\d[\d,.]*)\)")
_HOLDS: dict[str, Callable[[float, float], bool]] = {
    "≥": lambda value, limit: value >= limit,
    ">": lambda value, limit: value > limit,
    "≤": lambda value, limit: value <= limit,
    "<": lambda value, limit: value < limit,
}


def _number(text: str) -> float:
    return float(text.replace(",", ""))


def _check(text: str, unit: str) -> Callable[[float], bool]:
    """What a goal's text says a figure must be: a range in parentheses, else the first bound
    (`≥ 20%` is a share of 0.2, `< 1 s` is 1000 in a goal measured in ms)."""
    if found := _RANGE.search(text):
        low, high = _number(found[1]), _number(found[2])
        return lambda value: low <= value <= high
    found = _BOUND.search(text)
    if found is None:
        raise ValueError(f"no bound in the goal {text!r}")
    scale = {"%": 0.01, "s": 1000.0 if unit == "ms" else 1.0}.get(found[3] or "", 1.0)
    holds, limit = _HOLDS[found[1]], _number(found[2]) * scale
    return lambda value: holds(value, limit)


def _postgres_row(results: Results) -> dict[str, Any] | None:
    rows = results.get("e2e_postgres", {}).get("results", [])
    return next((r for r in rows if r["name"] == "postgres_single" and r["concurrency"] == 32), None)


def _postgres_vs_sqlite(field: str) -> Measure:
    """One replica of each service on PostgreSQL against the same on SQLite (c=32): `field` of the
    one ÷ the other's.
    The sections run one after the other: a ratio of two windows of one run."""

    def measure(results: Results) -> Figure | None:
        postgres, sqlite = _postgres_row(results), _e2e_row(results, 32)
        if not postgres or not sqlite or not postgres.get(field) or not sqlite.get(field):
            return None
        return Figure(postgres[field] / sqlite[field])

    return measure


def _cpu_vs_plain(results: Results) -> Figure | None:
    """CPU per order (the three processes) ÷ the plain FastAPI endpoint's CPU per request (c=32)."""
    order = _cpu_per_order_ms(results)
    rows = results.get("e2e", {}).get("results", [])
    plain = next((r for r in rows if r["name"] == "plain" and r["concurrency"] == 32), None)
    if order is None or not plain or not plain.get("cpu_us"):
        return None
    return Figure(order.value * 1000 / plain["cpu_us"])


def _statements_row(results: Results, keyed: bool) -> dict[str, Any] | None:
    rows = results.get("statements", {}).get("rows", [])
    return next((r for r in rows if r["idempotency_key"] is keyed), None)


def _statements(keyed: bool) -> Measure:
    def measure(results: Results) -> Figure | None:
        row = _statements_row(results, keyed)
        return _figure(row["statements_per_order"]) if row else None

    return measure


def _commits(results: Results) -> Figure | None:
    """The more commits per order of the two kinds of order, with or without a key."""
    rows = [row for keyed in (False, True) if (row := _statements_row(results, keyed))]
    if not rows:
        return None
    worst = max(rows, key=lambda r: r["commits_per_order"])
    return _figure(worst["commits_per_order"], f"{'with' if worst['idempotency_key'] else 'without'} a key")


@dataclass(frozen=True)
class Goal:
    """`text` states the goal's bound; the check is read from it, so the two cannot disagree."""

    id: str
    text: str
    unit: str
    measure: Measure

    @property
    def check(self) -> Callable[[float], bool]:
        return _check(self.text, self.unit)


GOALS: list[Goal] = [
    Goal("hop_grpc_vs_httpx", "gRPC hop ≥ 5× the httpx JSON hop (c=32, Charge)", "×", _hop_ratio("small", "httpx")),
    Goal(
        "hop_grpc_vs_aiohttp", "gRPC hop ≥ 1× the aiohttp JSON hop (c=32, Charge)", "×", _hop_ratio("small", "aiohttp")
    ),
    Goal(
        "hop_grpc_vs_aiohttp_large",
        "gRPC hop > 1× the aiohttp JSON hop (c=32, 100 items)",
        "×",
        _hop_ratio("large", "aiohttp"),
    ),
    Goal("e2e_share", "POST /v1/orders ≥ 20% of a plain FastAPI endpoint (c=32, SQLite)", "share", _e2e_share),
    Goal("e2e_p99", "POST /v1/orders p99 < 50 ms (c=32)", "ms", _e2e("p99_ms", 32)),
    Goal("e2e_cpu_vs_plain", "CPU per order ≤ 8× a plain FastAPI request's (c=32, SQLite)", "×", _cpu_vs_plain),
    Goal(
        "pg_share",
        "POST /v1/orders on PostgreSQL ≥ 0.8× SQLite's throughput (c=32, one replica of each service)",
        "×",
        _postgres_vs_sqlite("rps"),
    ),
    Goal(
        "pg_cpu",
        "CPU per order on PostgreSQL, its own included, ≤ 1.3× SQLite's (c=32, one replica of each service)",
        "×",
        _postgres_vs_sqlite("cpu_us"),
    ),
    Goal(
        "pg_statements",
        f"PostgreSQL statements per order ≤ {MAX_STATEMENTS}, no Idempotency-Key (counted by the server)",
        "statements",
        _statements(keyed=False),
    ),
    Goal(
        "pg_statements_keyed",
        f"PostgreSQL statements per order ≤ {MAX_STATEMENTS_KEYED} with an Idempotency-Key (counted by the server)",
        "statements",
        _statements(keyed=True),
    ),
    Goal(
        "pg_commits",
        f"PostgreSQL commits per order ≤ {MAX_COMMITS}, with or without a key (counted by the server)",
        "commits",
        _commits,
    ),
    Goal(
        "tracing_share",
        "POST /v1/orders with every span exported ≥ 80% of its throughput untraced (c=32)",
        "share",
        _tracing_share,
    ),
    Goal("e2e_p50_c1", "POST /v1/orders p50 < 3 ms (c=1)", "ms", _e2e("p50_ms", 1)),
    Goal("e2e_cpu", "CPU per order ≤ 2.5 ms, gateway + order + payment (c=32)", "ms", _cpu_per_order_ms),
    Goal("sse_p50", "SSE delay p50 < 10 ms (1 watcher)", "ms", _delay("sse", "p50_ms", 1)),
    Goal("ws_p50", "WebSocket delay p50 < 10 ms (1 watcher)", "ms", _delay("websocket", "p50_ms", 1)),
    Goal("sse_p99", "SSE delay p99 < 100 ms (1,000 watchers)", "ms", _delay("sse", "p99_ms", 1000)),
    Goal("ws_p99", "WebSocket delay p99 < 100 ms (1,000 watchers)", "ms", _delay("websocket", "p99_ms", 1000)),
    Goal("long_poll_p50", "long polling delay p50 < 20 ms (1 watcher)", "ms", _delay("long_poll", "p50_ms", 1)),
    Goal("short_poll_mean", "short polling at 1 s: mean delay ≈ 500 ms (350-650)", "ms", _short_poll_mean),
    Goal(
        "short_poll_rpm",
        "short polling at 1 s: ≈ 60 requests/min per idle client (55-65)",
        "req/min",
        _idle("short_poll"),
    ),
    Goal("sse_memory", "gateway memory per idle SSE watcher ≤ 20 KiB", "KiB", _memory("sse")),
    Goal("ws_memory", "gateway memory per idle WebSocket watcher ≤ 20 KiB", "KiB", _memory("websocket")),
    Goal(
        "cross_replica_p50",
        "push to a watcher on another replica: p50 < 100 ms (PostgreSQL)",
        "ms",
        _cross_replica("p50_ms"),
    ),
    Goal(
        "cross_replica_max",
        "push to a watcher on another replica: worst < 1 s (PostgreSQL)",
        "ms",
        _cross_replica("max_ms"),
    ),
]


def evaluate(results: Results) -> list[dict[str, Any]]:
    out = []
    for goal in GOALS:
        figure = goal.measure(results)
        row: dict[str, Any] = {
            "id": goal.id,
            "goal": goal.text,
            "unit": goal.unit,
            "measured": round(figure.value, 3) if figure else None,
            "met": goal.check(figure.value) if figure else None,
        }
        if figure and figure.basis:
            row["basis"] = figure.basis
        out.append(row)
    return out
