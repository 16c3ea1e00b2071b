"""The one table `make bench` prints, and the same figures as Markdown (bench/results/latest.md)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

Row = Sequence[object]
Table = tuple[str, Row, list[Row]]
Results = dict[str, Any]


def _cell(value: object) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:,.0f}" if value >= 100 else f"{value:.1f}" if value >= 10 else f"{value:.2f}"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return str(value)


def _text(title: str, header: Row, rows: list[Row]) -> str:
    cells = [[_cell(v) for v in header], *[[_cell(v) for v in row] for row in rows]]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    lines = [title]
    for index, row in enumerate(cells):
        padded = [c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths, strict=True))]
        lines.append("  " + "  ".join(padded))
        if index == 0:
            lines.append("  " + "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _markdown(title: str, header: Row, rows: list[Row]) -> str:
    lines = [f"**{title}**", "", "| " + " | ".join(_cell(h) for h in header) + " |"]
    lines.append("|" + "|".join("---" if i == 0 else "---:" for i in range(len(header))) + "|")
    lines += ["| " + " | ".join(_cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def _codec(codec: Results) -> Table:
    rows: list[Row] = [
        (f"{payload} · {name}", row["us"], row["bytes"], row["vs_protobuf"])
        for payload, formats in codec.items()
        for name, row in formats.items()
    ]
    return (
        "1a. Encode + decode of one hop's two messages, no network",
        ("payload · format", "µs", "bytes", "× protobuf"),
        rows,
    )


def _ratelimit(part: Results) -> Table:
    rows: list[Row] = [
        (
            f"{r['storage']} · {'one at a time' if r['mode'] == 'sequential' else '64 at once'}",
            r["us_per_check"],
            r["cpu_us_per_check"],
            r["redis_cpu_us_per_check"] if r["storage"] == "redis" else None,
        )
        for r in part["rows"]
    ]
    return (
        "1b. One rate-limit check (per request): in the gateway's memory, and in a Redis that gateways share",
        ("storage · checks", "µs per check", "gateway CPU µs", "Redis CPU µs"),
        rows,
    )


def _hop(hop: Results) -> list[Table]:
    header = (
        "payload · clients · transport",
        "calls/s",
        "p50 ms",
        "p90 ms",
        "p99 ms",
        "client CPU µs/call",
        "server CPU µs/call",
        "errors",
    )
    rows: list[Row] = [
        (
            f"{r['payload']} · c={r['concurrency']} · {r['transport']}",
            r.get("rps"),
            r.get("p50_ms"),
            r.get("p90_ms"),
            r.get("p99_ms"),
            r.get("client_cpu_us"),
            r.get("server_cpu_us"),
            r.get("errors"),
        )
        for r in hop["results"]
    ]
    ratios: list[Row] = [
        (
            f"{r['payload']} · c={r['concurrency']}",
            r.get("grpc_vs_httpx"),
            r.get("grpc_vs_aiohttp"),
            r.get("grpc_cpu_vs_httpx"),
            r.get("grpc_cpu_vs_aiohttp"),
        )
        for r in hop["ratios"]
    ]
    return [
        ("1b. Inter-service hop: gRPC/protobuf vs JSON over HTTP/1.1 (medians)", header, rows),
        (
            "1c. gRPC hop throughput, and calls per CPU-second (client + server), as a multiple of the JSON hop's",
            ("payload · clients", "× httpx", "× aiohttp", "per CPU × httpx", "per CPU × aiohttp"),
            ratios,
        ),
    ]


_LOAD_HEADER = ("req/s", "p50 ms", "p90 ms", "p99 ms")
_CPU_KINDS = ("gateway", "order_service", "payment_service")


def _load_cells(r: Results, kinds: Sequence[str] = _CPU_KINDS) -> list[object]:
    return [
        r.get("rps"),
        r.get("p50_ms"),
        r.get("p90_ms"),
        r.get("p99_ms"),
        *(r.get(f"{kind}_cpu_us") for kind in kinds),
        r.get("cpu_us"),
        r.get("errors"),
    ]


def _share_rows(ratios: list[Results], width: int) -> list[Row]:
    rows: list[Row] = []
    for r in ratios:
        # A schema 1 run (before the plain baseline) kept only orders ÷ bare, as `orders_vs_bare`.
        name, baseline = r.get("name", "orders"), r.get("baseline", "bare")
        share = r.get("share", r.get("orders_vs_bare"))
        rows.append((f"{name} ÷ {baseline} · c={r['concurrency']}", share, *(None,) * (width - 2)))
    return rows


def _e2e(e2e: Results) -> Table:
    header = (
        "endpoint · clients",
        *_LOAD_HEADER,
        "gateway CPU µs/req",
        "order CPU µs/req",
        "payment CPU µs/req",
        "total CPU µs/req",
        "errors",
    )
    rows: list[Row] = [(f"{r['endpoint']} · c={r['concurrency']}", *_load_cells(r)) for r in e2e["results"]]
    rows += _share_rows(e2e["ratios"], len(header))
    title = (
        "2a. POST /v1/orders end to end on SQLite vs a plain FastAPI endpoint and the gateway's bare route "
        f"(medians; load: {e2e.get('load_tool')})"
    )
    if traced := e2e.get("tracing"):
        title += f"; traced rows: {traced['batches']} OTLP batches, {traced['kib']} KiB exported"
    return (title, header, rows)


def _e2e_postgres(part: Results) -> Table:
    kinds = (*_CPU_KINDS, "postgres")
    header = (
        "replicas (order + payment) · clients",
        *_LOAD_HEADER,
        "gateway CPU µs/req",
        "order CPU µs/req",
        "payment CPU µs/req",
        "PostgreSQL CPU µs/req",
        "total CPU µs/req",
        "errors",
    )
    rows: list[Row] = [
        (
            f"{r['endpoint']} · {r['order_replicas']} + {r['payment_replicas']} · c={r['concurrency']}",
            *_load_cells(r, kinds),
        )
        for r in part["results"]
    ]
    rows += _share_rows(part["ratios"], len(header))
    title = (
        "2b. POST /v1/orders on PostgreSQL: one replica of each service (1 + 1), and the 2 + 2 cluster with 1 or 2 "
        "order replicas taking the calls, CPU summed over replicas "
        f"(medians; load: {part.get('load_tool')}; on 2 cores the replicas share them)"
    )
    return (title, header, rows)


_STATEMENT_WIDTH = 110  # characters of a statement's text


def _statements(part: Results) -> list[Table]:
    goals = part["goals"]
    rows: list[Row] = [
        (
            "with" if r["idempotency_key"] else "without",
            r["orders"],
            r["statements_per_order"],
            f"≤ {goals['statements_keyed'] if r['idempotency_key'] else goals['statements']}",
            r["commits_per_order"],
            f"≤ {goals['commits']}",
            r["rollbacks_per_order"],
        )
        for r in part["rows"]
    ]
    background = part["background"]
    title = (
        "2d. POST /v1/orders on PostgreSQL, counted by the server (pg_stat_statements; commits: its statement log): "
        f"per order, gateway → order → payment → order, both databases; {part['concurrency']} clients; "
        f"the idle services' {background['statements_per_s']} statements/s and {background['commits_per_s']} "
        f"commits/s (quiet {background['window_s']} s window) subtracted"
    )
    header = ("Idempotency-Key", "orders", "statements/order", "goal", "commits/order", "goal", "rollbacks/order")
    breakdown: list[Row] = [
        (f"{'with' if r['idempotency_key'] else 'without'} key · {line['query'][:_STATEMENT_WIDTH]}", line["per_order"])
        for r in part["rows"]
        for line in r["breakdown"]
    ]
    return [
        (title, header, rows),
        (
            "2e. Where an order's statements go (database: statement, executions per order)",
            ("statement", "per order"),
            breakdown,
        ),
    ]


def _server(part: Results) -> Table:
    header = ("server · route · clients", *_LOAD_HEADER, "gateway CPU µs/req", "total CPU µs/req", "errors")
    rows: list[Row] = [
        (
            f"{r['server']} · {r['endpoint']} · c={r['concurrency']}",
            *_load_cells(r, ("gateway",)),
        )
        for r in part["results"]
    ]
    rows += _share_rows(part["ratios"], len(header))
    servers = "; ".join(part.get("servers", {}).values())
    return (f"2c. The gateway's HTTP server (medians; {servers})", header, rows)


_DELAY_HEADER = ("p50 ms", "p99 ms", "mean ms", "max ms", "saw it", "missed", "confirm p50 ms")


def _delay_cells(r: Results) -> Row:
    """The cells of a push delay row under _DELAY_HEADER."""
    keys = ("p50_ms", "p99_ms", "mean_ms", "max_ms", "seen", "missed", "confirm_p50_ms")
    return tuple(r.get(key) for key in keys)


def _push(push: Results) -> list[Table]:
    missing = [c for c, ok in push["available"].items() if not ok]
    delays: list[Row] = [
        (
            f"{r['channel']} · {r['watchers']} watching" + (f" · ERROR {r['error']}" if "error" in r else ""),
            *_delay_cells(r),
        )
        for r in push["delay"]
    ]
    delays += [(f"{c} · not available",) + (None,) * len(_DELAY_HEADER) for c in missing]
    memory = {r["channel"]: r for r in push["memory"]}
    idle: list[Row] = [
        (
            r["channel"],
            r["requests_per_min"],
            r["requests"],
            r["window_s"],
            memory.get(r["channel"], {}).get("kib_per_watcher"),
            memory.get(r["channel"], {}).get("watchers"),
        )
        for r in push["idle"]
    ]
    title = (
        f"3a. Push: delay from the confirm request until a client has the new version "
        f"(short poll every {push['short_poll_interval_s']:g} s, long poll wait={push['long_poll_wait_s']} s)"
    )
    return [
        (
            title,
            ("channel · watchers", *_DELAY_HEADER),
            delays,
        ),
        (
            "3b. Push: idle client's HTTP requests per minute (after its first), gateway memory per idle watcher",
            ("channel", "req/min", "requests", "window s", "KiB/watcher", "watchers"),
            idle,
        ),
    ]


def _push_replicas(part: Results) -> Table:
    rows: list[Row] = [(f"{r['channel']} · {r['replica']} replica", *_delay_cells(r)) for r in part["delay"]]
    title = (
        f"3c. Push on PostgreSQL, {part['order_replicas']} order replicas: delay from ConfirmPayment on one replica "
        "until a watcher on the same or the other replica has the new version"
    )
    return (title, ("watcher · where", *_DELAY_HEADER), rows)


def _webhooks(part: Results) -> Table:
    rows: list[Row] = [
        (
            f"{r['endpoints']} endpoint(s)" + (f", {r['dead']} dead" if r["dead"] else "") + f" · {r['mode']}",
            r["events_per_s"],
            r["deliveries_per_s"],
            r["p50_ms"],
            r["p99_ms"],
            r["max_ms"],
            r["deliveries"],
            r["duplicates"],
        )
        for r in part["results"]
    ]
    title = (
        f"4. Webhooks (SQLite): events and deliveries per second, delay from the change to the receiver "
        f"(burst: orders from {part['clients']} clients at once; paced: one order at a time)"
    )
    header = ("endpoints · orders", "events/s", "deliveries/s", "p50 ms", "p99 ms", "max ms", "deliveries", "twice")
    return (title, header, rows)


def _goals(goals: list[Results]) -> Table:
    verdict = {True: "met", False: "MISSED", None: "not measured"}
    rows: list[Row] = [(g["goal"], g["measured"], g["unit"], verdict[g["met"]], g.get("basis", "")) for g in goals]
    return ("Goals (this run, this machine)", ("goal", "measured", "unit", "", "measured as"), rows)


def _one(render: Callable[[Results], Table]) -> Callable[[Results], list[Table]]:
    return lambda part: [render(part)]


# The sections in the order the report shows them: (name, a key its results hold once it has
# run, how its tables are made).
_SECTIONS: list[tuple[str, str, Callable[[Results], list[Table]]]] = [
    ("codec", "small", _one(_codec)),
    ("ratelimit", "rows", _one(_ratelimit)),
    ("hop", "results", _hop),
    ("e2e", "results", _one(_e2e)),
    ("e2e_postgres", "results", _one(_e2e_postgres)),
    ("statements", "rows", _statements),
    ("server", "results", _one(_server)),
    ("push", "available", _push),
    ("push_replicas", "delay", _one(_push_replicas)),
    ("webhooks", "results", _one(_webhooks)),
]


def _tables(results: Results) -> list[Table]:
    tables = [
        table for name, key, render in _SECTIONS if key in results.get(name, {}) for table in render(results[name])
    ]
    if results.get("goals"):
        tables.append(_goals(results["goals"]))
    return tables


def _machine_line(results: Results) -> str:
    m = results.get("machine", {})
    return (
        f"{m.get('cpu_model')} · {m.get('cores')} cores · {m.get('memory_gib')} GiB · Python {m.get('python')} · "
        f"{results.get('mode')} run started {results.get('started_at')}, {results.get('duration_s')} s"
    )


def _errors(results: Results) -> list[str]:
    """Sections that failed, and those skipped (PostgreSQL missing), one line each."""
    lines = []
    for name, part in results.items():
        if isinstance(part, dict) and "error" in part:
            lines.append(f"{name}: ERROR {part['error']}")
        elif isinstance(part, dict) and "skipped" in part:
            lines.append(f"{name}: skipped: {part['skipped']}")
    return lines


def text(results: Results) -> str:
    parts = [f"make bench · {_machine_line(results)}", *(_text(*t) for t in _tables(results)), *_errors(results)]
    return "\n\n".join(parts) + "\n"


def markdown(results: Results) -> str:
    parts = [f"Machine: {_machine_line(results)}", *(_markdown(*t) for t in _tables(results)), *_errors(results)]
    return "\n\n".join(parts) + "\n"
