"""The issues' goals, checked against one run's figures. Reported, never asserted: a missed goal
is a finding to explain (with a profile), not a failed build.

Each goal names the condition it is judged at (c=32, 1,000 watchers…). Where the run did not
measure that condition — the quick run watches with 10 clients, not 1,000 — the nearest figure
is judged and the goal's `basis` says what it really was."""

from __future__ import annotations

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
    id: str
    text: str
    unit: str
    measure: Measure
    check: Callable[[float], bool]


GOALS: list[Goal] = [
    Goal(
        "hop_grpc_vs_httpx",
        "gRPC hop ≥ 5× the httpx JSON hop (c=32, Charge)",
        "×",
        _hop_ratio("small", "httpx"),
        lambda v: v >= 5,
    ),
    Goal(
        "hop_grpc_vs_aiohttp",
        "gRPC hop ≥ the aiohttp JSON hop (c=32, Charge)",
        "×",
        _hop_ratio("small", "aiohttp"),
        lambda v: v >= 1,
    ),
    Goal(
        "hop_grpc_vs_aiohttp_large",
        "gRPC hop ahead of the aiohttp JSON hop (c=32, 100 items)",
        "×",
        _hop_ratio("large", "aiohttp"),
        lambda v: v > 1,
    ),
    Goal(
        "e2e_share",
        "POST /v1/orders ≥ 20% of a plain FastAPI endpoint (c=32, SQLite)",
        "share",
        _e2e_share,
        lambda v: v >= 0.2,
    ),
    Goal("e2e_p99", "POST /v1/orders p99 < 50 ms (c=32)", "ms", _e2e("p99_ms", 32), lambda v: v < 50),
    Goal(
        "tracing_share",
        "POST /v1/orders with every span exported ≥ 80% of its throughput untraced (c=32)",
        "share",
        _tracing_share,
        lambda v: v >= 0.8,
    ),
    Goal("e2e_p50_c1", "POST /v1/orders p50 < 3 ms (c=1)", "ms", _e2e("p50_ms", 1), lambda v: v < 3),
    Goal(
        "e2e_cpu",
        "CPU per order ≤ 2.5 ms, gateway + order + payment (c=32)",
        "ms",
        _cpu_per_order_ms,
        lambda v: v <= 2.5,
    ),
    Goal(
        "pg_statements",
        f"PostgreSQL statements per order ≤ {MAX_STATEMENTS}, no Idempotency-Key (counted by the server)",
        "statements",
        _statements(keyed=False),
        lambda v: v <= MAX_STATEMENTS,
    ),
    Goal(
        "pg_statements_keyed",
        f"PostgreSQL statements per order ≤ {MAX_STATEMENTS_KEYED} with an Idempotency-Key (counted by the server)",
        "statements",
        _statements(keyed=True),
        lambda v: v <= MAX_STATEMENTS_KEYED,
    ),
    Goal(
        "pg_commits",
        f"PostgreSQL commits per order ≤ {MAX_COMMITS}, with or without a key (counted by the server)",
        "commits",
        _commits,
        lambda v: v <= MAX_COMMITS,
    ),
    Goal("sse_p50", "SSE delay p50 < 10 ms (1 watcher)", "ms", _delay("sse", "p50_ms", 1), lambda v: v < 10),
    Goal("ws_p50", "WebSocket delay p50 < 10 ms (1 watcher)", "ms", _delay("websocket", "p50_ms", 1), lambda v: v < 10),
    Goal("sse_p99", "SSE delay p99 < 100 ms (1,000 watchers)", "ms", _delay("sse", "p99_ms", 1000), lambda v: v < 100),
    Goal(
        "ws_p99",
        "WebSocket delay p99 < 100 ms (1,000 watchers)",
        "ms",
        _delay("websocket", "p99_ms", 1000),
        lambda v: v < 100,
    ),
    Goal(
        "long_poll_p50",
        "long polling delay p50 < 20 ms (1 watcher)",
        "ms",
        _delay("long_poll", "p50_ms", 1),
        lambda v: v < 20,
    ),
    Goal(
        "short_poll_mean",
        "short polling at 1 s: mean delay ≈ 500 ms (350-650)",
        "ms",
        _short_poll_mean,
        lambda v: 350 <= v <= 650,
    ),
    Goal(
        "short_poll_rpm",
        "short polling at 1 s: ≈ 60 requests/min per idle client (55-65)",
        "req/min",
        _idle("short_poll"),
        lambda v: 55 <= v <= 65,
    ),
    Goal("sse_memory", "gateway memory per idle SSE watcher ≤ 20 KiB", "KiB", _memory("sse"), lambda v: v <= 20),
    Goal(
        "ws_memory",
        "gateway memory per idle WebSocket watcher ≤ 20 KiB",
        "KiB",
        _memory("websocket"),
        lambda v: v <= 20,
    ),
    Goal(
        "cross_replica_p50",
        "push to a watcher on another replica: p50 < 100 ms (PostgreSQL)",
        "ms",
        _cross_replica("p50_ms"),
        lambda v: v < 100,
    ),
    Goal(
        "cross_replica_max",
        "push to a watcher on another replica: worst < 1 s (PostgreSQL)",
        "ms",
        _cross_replica("max_ms"),
        lambda v: v < 1000,
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
