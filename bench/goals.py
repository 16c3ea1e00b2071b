"""The issue's goals, checked against one run's figures. Reported, never asserted: a missed goal
is a finding to explain (with a profile), not a failed build."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

Results = dict[str, Any]


def _hop_ratio(results: Results, other: str) -> float | None:
    for row in results.get("hop", {}).get("ratios", []):
        if (row["payload"], row["concurrency"]) == ("small", 32):
            value = row.get(f"grpc_vs_{other}")
            return float(value) if value is not None else None
    return None


def _e2e(results: Results, field: str) -> float | None:
    e2e = results.get("e2e", {})
    if field == "share":
        return next((r["orders_vs_bare"] for r in e2e.get("ratios", []) if r["concurrency"] == 32), None)
    return next((r[field] for r in e2e.get("results", []) if r["name"] == "orders" and r["concurrency"] == 32), None)


def _tracing(results: Results, field: str) -> float | None:
    ratios = results.get("tracing", {}).get("ratios", [])
    row = next((r for r in ratios if r["concurrency"] == 32 and r.get("tracing", "on") == "on"), None)
    return float(row[field]) if row else None


def _delay(results: Results, channel: str, field: str, most: bool) -> float | None:
    """`field` of `channel` at 1 watcher (most=False) or at the most watchers measured."""
    rows = [r for r in results.get("push", {}).get("delay", []) if r["channel"] == channel and r.get("seen")]
    if not rows:
        return None
    row = max(rows, key=lambda r: r["watchers"]) if most else min(rows, key=lambda r: r["watchers"])
    return float(row[field])


def _short_poll_mean(results: Results) -> float | None:
    rows = [r for r in results.get("push", {}).get("delay", []) if r["channel"] == "short_poll" and r.get("seen")]
    # The crowd of 100 (or the largest crowd up to it) samples the interval best.
    rows = [r for r in rows if r["watchers"] <= 100] or rows
    return float(max(rows, key=lambda r: r["seen"])["mean_ms"]) if rows else None


def _idle(results: Results, channel: str) -> float | None:
    row = next((r for r in results.get("push", {}).get("idle", []) if r["channel"] == channel), None)
    return float(row["requests_per_min"]) if row else None


def _memory(results: Results, channel: str) -> float | None:
    row = next((r for r in results.get("push", {}).get("memory", []) if r["channel"] == channel), None)
    return float(row["kib_per_watcher"]) if row else None


Goal = tuple[str, str, str, Callable[[Results], float | None], Callable[[float], bool]]

GOALS: list[Goal] = [
    (
        "hop_grpc_vs_httpx",
        "gRPC hop ≥ 5× the httpx JSON hop (c=32, Charge)",
        "×",
        lambda r: _hop_ratio(r, "httpx"),
        lambda v: v >= 5,
    ),
    (
        "hop_grpc_vs_aiohttp",
        "gRPC hop ahead of the aiohttp JSON hop (c=32, Charge)",
        "×",
        lambda r: _hop_ratio(r, "aiohttp"),
        lambda v: v > 1,
    ),
    (
        "e2e_share",
        "POST /v1/orders ≥ 20% of the bare endpoint (c=32)",
        "share",
        lambda r: _e2e(r, "share"),
        lambda v: v >= 0.2,
    ),
    ("e2e_p99", "POST /v1/orders p99 < 50 ms (c=32)", "ms", lambda r: _e2e(r, "p99_ms"), lambda v: v < 50),
    (
        "tracing_throughput",
        "POST /v1/orders with every span exported ≥ 80% of its throughput untraced (c=32)",
        "×",
        lambda r: _tracing(r, "rps_on_vs_off"),
        lambda v: v >= 0.8,
    ),
    (
        "sse_p50",
        "SSE delay p50 < 10 ms (1 watcher)",
        "ms",
        lambda r: _delay(r, "sse", "p50_ms", False),
        lambda v: v < 10,
    ),
    (
        "ws_p50",
        "WebSocket delay p50 < 10 ms (1 watcher)",
        "ms",
        lambda r: _delay(r, "websocket", "p50_ms", False),
        lambda v: v < 10,
    ),
    (
        "sse_p99",
        "SSE delay p99 < 100 ms (most watchers)",
        "ms",
        lambda r: _delay(r, "sse", "p99_ms", True),
        lambda v: v < 100,
    ),
    (
        "ws_p99",
        "WebSocket delay p99 < 100 ms (most watchers)",
        "ms",
        lambda r: _delay(r, "websocket", "p99_ms", True),
        lambda v: v < 100,
    ),
    (
        "long_poll_p50",
        "long polling delay p50 < 20 ms (1 watcher)",
        "ms",
        lambda r: _delay(r, "long_poll", "p50_ms", False),
        lambda v: v < 20,
    ),
    (
        "short_poll_mean",
        "short polling at 1 s: mean delay ≈ 500 ms (350-650)",
        "ms",
        _short_poll_mean,
        lambda v: 350 <= v <= 650,
    ),
    (
        "short_poll_rpm",
        "short polling at 1 s: ≈ 60 requests/min per idle client (55-65)",
        "req/min",
        lambda r: _idle(r, "short_poll"),
        lambda v: 55 <= v <= 65,
    ),
    (
        "sse_memory",
        "gateway memory per idle SSE watcher < 20 KiB",
        "KiB",
        lambda r: _memory(r, "sse"),
        lambda v: v < 20,
    ),
    (
        "ws_memory",
        "gateway memory per idle WebSocket watcher < 20 KiB",
        "KiB",
        lambda r: _memory(r, "websocket"),
        lambda v: v < 20,
    ),
]


def evaluate(results: Results) -> list[dict[str, Any]]:
    out = []
    for key, text, unit, measure, check in GOALS:
        value = measure(results)
        out.append(
            {
                "id": key,
                "goal": text,
                "unit": unit,
                "measured": round(value, 3) if value is not None else None,
                "met": check(value) if value is not None else None,
            }
        )
    return out
