"""PNG plots of a run (matplotlib, Agg backend: no display needed)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

Results = dict[str, Any]
_COLOURS = {
    "grpc": "#2b7bba",
    "httpx": "#e07b39",
    "aiohttp": "#7a9c3a",
    "protobuf": "#2b7bba",
    "json": "#e07b39",
    "orjson": "#7a9c3a",
    "orders": "#2b7bba",
    "plain": "#555555",
    "bare": "#9a9a9a",
    "same": "#2b7bba",
    "cross": "#e07b39",
    "short_poll": "#e07b39",
    "long_poll": "#c9a227",
    "sse": "#2b7bba",
    "websocket": "#7a9c3a",
}


def _bars(ax: Any, groups: list[str], series: dict[str, list[float]], ylabel: str, log: bool = False) -> None:
    width = 0.8 / max(len(series), 1)
    for index, (name, values) in enumerate(series.items()):
        xs = [g + (index - (len(series) - 1) / 2) * width for g in range(len(groups))]
        bars = ax.bar(xs, values, width, label=name, color=_COLOURS.get(name))
        ax.bar_label(bars, fmt="%.3g", fontsize=7, padding=1)
    ax.set_xticks(range(len(groups)), groups, fontsize=8)
    ax.set_ylabel(ylabel)
    if log:
        ax.set_yscale("log")
    ax.legend(fontsize=8)
    ax.grid(axis="y", alpha=0.3)


def _footer(fig: Any, results: Results) -> None:
    m = results.get("machine", {})
    fig.text(
        0.01,
        0.005,
        f"{m.get('cpu_model')}, {m.get('cores')} cores, Python {m.get('python')} · "
        f"{results.get('mode')} run {results.get('started_at')}",
        fontsize=7,
        color="#666",
    )


def _finish(fig: Any, results: Results, path: Path) -> None:
    """The footer, the layout, the file; the figure is closed."""
    _footer(fig, results)
    fig.tight_layout(rect=(0, 0.03, 1, 1))
    fig.savefig(path, dpi=110)
    plt.close(fig)


def hop(results: Results, path: Path) -> None:
    rows = results["hop"]["results"]
    groups = sorted({(r["payload"], r["concurrency"]) for r in rows}, key=lambda g: (g[0] != "small", g[1]))
    labels = [f"{p}\nc={c}" for p, c in groups]

    def series(field: str) -> dict[str, list[float]]:
        return {
            t: [
                next(
                    (r.get(field) or 0.0 for r in rows if (r["transport"], r["payload"], r["concurrency"]) == (t, *g)),
                    0.0,
                )
                for g in groups
            ]
            for t in ("grpc", "httpx", "aiohttp")
        }

    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.5))
    _bars(left, labels, series("rps"), "calls per second (higher is better)")
    left.set_title("Inter-service hop: throughput")
    _bars(right, labels, series("p99_ms"), "p99 latency, ms (lower is better, log)", log=True)
    right.set_title("Inter-service hop: p99 latency")
    _finish(fig, results, path)


def codec(results: Results, path: Path) -> None:
    data = results["codec"]
    payloads = list(data)
    formats = ("protobuf", "json", "orjson")
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    _bars(left, payloads, {f: [data[p][f]["us"] for p in payloads] for f in formats}, "µs per hop (log)", log=True)
    left.set_title("Encode + decode of one hop's messages")
    _bars(
        right,
        payloads,
        {f: [data[p][f]["bytes"] for p in payloads] for f in formats},
        "bytes on the wire (log)",
        log=True,
    )
    right.set_title("Size of one hop's messages")
    _finish(fig, results, path)


def e2e(results: Results, path: Path) -> None:
    rows = results["e2e"]["results"]
    concurrencies = sorted({r["concurrency"] for r in rows})
    labels = [f"c={c}" for c in concurrencies]

    def series(field: str) -> dict[str, list[float]]:
        return {
            name: [
                next((r.get(field) or 0.0 for r in rows if (r["name"], r["concurrency"]) == (name, c)), 0.0)
                for c in concurrencies
            ]
            for name in ("orders", "plain", "bare")
        }

    fig, axes = plt.subplots(1, 3, figsize=(13, 4))
    _bars(axes[0], labels, series("rps"), "requests per second (log)", log=True)
    axes[0].set_title("POST /v1/orders vs plain FastAPI and bare route")
    _bars(axes[1], labels, series("p50_ms"), "p50 latency, ms")
    axes[1].set_title("p50 latency")
    _bars(axes[2], labels, series("p99_ms"), "p99 latency, ms")
    axes[2].axhline(50, color="#c00", linestyle="--", linewidth=1)
    axes[2].set_title("p99 latency (goal < 50 ms at c=32)")
    _finish(fig, results, path)


def push(results: Results, path: Path) -> None:
    data = results["push"]
    fig, axes = plt.subplots(1, 3, figsize=(14, 4.2))
    for channel in ("short_poll", "long_poll", "sse", "websocket"):
        rows = sorted(
            (r for r in data["delay"] if r["channel"] == channel and r.get("seen")), key=lambda r: r["watchers"]
        )
        if not rows:
            continue
        xs = [r["watchers"] for r in rows]
        axes[0].plot(xs, [max(r["p50_ms"], 0.01) for r in rows], marker="o", label=channel, color=_COLOURS[channel])
        axes[1].plot(xs, [max(r["p99_ms"], 0.01) for r in rows], marker="o", label=channel, color=_COLOURS[channel])
    # The goals for SSE and WebSocket: p50 < 10 ms (1 watcher), p99 < 100 ms (1,000 watchers).
    axes[0].axhline(10, color="#c00", linestyle="--", linewidth=1)
    axes[1].axhline(100, color="#c00", linestyle="--", linewidth=1)
    for ax, title in ((axes[0], "delay p50 (goal: SSE/WS < 10 ms)"), (axes[1], "delay p99 (goal: SSE/WS < 100 ms)")):
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("clients watching the order")
        ax.set_ylabel("ms from the confirm request")
        ax.set_title(f"Push: {title}")
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=8)
    idle = {r["channel"]: r["requests_per_min"] for r in data["idle"]}
    if idle:
        names = list(idle)
        bars = axes[2].bar(names, [idle[n] for n in names], color=[_COLOURS.get(n) for n in names])
        axes[2].bar_label(bars, fmt="%.3g", fontsize=8)
    axes[2].set_title("HTTP requests per minute, idle client")
    axes[2].tick_params(axis="x", labelsize=8)
    _finish(fig, results, path)


def variants(results: Results, path: Path) -> None:
    """POST /v1/orders at the highest concurrency in every set-up measured: SQLite, PostgreSQL
    with 1 and 2 replicas, the gateway under uvicorn and granian; and the push delays on the
    same and on the other replica."""
    rows: list[tuple[str, Results]] = []
    for key in ("e2e", "e2e_postgres"):
        part = results.get(key, {}).get("results", [])
        top = max((r["concurrency"] for r in part), default=0)
        rows += [
            (f"PG {r['order_replicas']}+{r['payment_replicas']}" if key == "e2e_postgres" else "SQLite", r)
            for r in part
            if r["concurrency"] == top and r["endpoint"] == "POST /v1/orders"
        ]
    server = results.get("server", {}).get("results", [])
    rows += [(f"{r['server']}\n{r['route']}", r) for r in server]
    replicas = results.get("push_replicas", {}).get("delay", [])
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.2))
    if rows:
        labels = [label for label, _ in rows]
        _bars(axes[0], labels, {"req/s": [r.get("rps") or 0.0 for _, r in rows]}, "requests per second")
        axes[0].set_title("POST /v1/orders (and the bare route): set-ups, servers")
        _bars(axes[1], labels, {"p99": [r.get("p99_ms") or 0.0 for _, r in rows]}, "p99 latency, ms (log)", log=True)
        axes[1].set_title("p99 latency")
    if replicas:
        channels = sorted({r["channel"] for r in replicas})
        series = {
            f"{where} {q}": [
                next((r[f"{q}_ms"] for r in replicas if (r["channel"], r["replica"]) == (c, where)), 0.0)
                for c in channels
            ]
            for where in ("same", "cross")
            for q in ("p50", "p99")
        }
        _bars(axes[2], channels, series, "ms from ConfirmPayment (log)", log=True)
        axes[2].axhline(100, color="#c00", linestyle="--", linewidth=1)
        axes[2].set_title("Push across replicas (goal: p50 < 100 ms)")
    _finish(fig, results, path)


def soak(results: Results, path: Path) -> None:
    """The soak (bench/soak): each process's memory and open files, the database connections and
    each process's event loop lag over the run; the warm-up shaded."""
    series = results["soak"]["series"]
    at = series["at_s"]
    fig, axes = plt.subplots(2, 2, figsize=(13, 7.5), sharex=True)
    panels = (
        (axes[0][0], series["rss_mib"], "resident memory (MiB)"),
        (axes[0][1], series["open_files"], "open files"),
        (axes[1][0], series["db_connections"], "PostgreSQL connections"),
    )
    for ax, lines, label in panels:
        for name, values in lines.items():
            ax.plot(at, values, label=name, linewidth=1.2)
        ax.set_ylabel(label)
    lag = axes[1][1]
    for name, points in series["loop_lag_p99_ms"].items():
        lag.plot([t for t, _ in points], [v for _, v in points], label=name, linewidth=1.2)
    lag.set_ylabel("event loop lag, p99 per interval (ms)")
    lag.set_yscale("log")
    for ax in (*axes[0], *axes[1]):
        ax.axvspan(0, results["soak"]["warm_up_s"], color="#ddd", alpha=0.5, lw=0)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    for ax in axes[1]:
        ax.set_xlabel("seconds")
    _finish(fig, results, path)


def _has_variants(results: Results) -> bool:
    return any(isinstance(results.get(k), dict) and results[k].get(p) for k, p in _VARIANT_PARTS)


_VARIANT_PARTS = (("e2e_postgres", "results"), ("server", "results"), ("push_replicas", "delay"))


def write_all(results: Results, directory: Path) -> list[Path]:
    written = []
    for name, draw, key, probe in (
        ("codec", codec, "codec", "small"),
        ("hop", hop, "hop", "results"),
        ("e2e", e2e, "e2e", "results"),
        ("push", push, "push", "delay"),
    ):
        section = results.get(key)
        if isinstance(section, dict) and section.get(probe):
            path = directory / f"{name}.png"
            draw(results, path)
            written.append(path)
    if _has_variants(results):
        path = directory / "variants.png"
        variants(results, path)
        written.append(path)
    return written
