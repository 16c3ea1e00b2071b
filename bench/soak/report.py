"""The soak's figures as Markdown (bench/results/soak.md)."""

from __future__ import annotations

from typing import Any

from bench.report import Row, _markdown


def markdown(results: dict[str, Any]) -> str:
    soak = results["soak"]
    machine = results["machine"]
    lines = [
        "# Soak",
        "",
        f"{results['started_at']} · {soak['seconds']:g} s (warm-up {soak['warm_up_s']:g} s) · "
        f"{machine.get('cpu_model')}, {machine.get('cores')} cores · two replicas of each gRPC service and two "
        "gateways on one PostgreSQL server · `make soak`",
        "",
        f"**{soak['requests']:,} requests, {soak['errors']} errors, {soak['lost']} lost** · "
        f"{soak['orders_in_db']:,} orders in the books, {soak['audit_problems']} audit problems · "
        f"POST /v1/orders p50 {soak['create_p50_ms']} ms, p99 {soak['create_p99_ms']} ms",
        "",
        "Goals: " + ", ".join(f"{name} {'✓' if met else '✗'}" for name, met in soak["goals"].items()),
        "",
    ]
    process_rows: list[Row] = [
        (
            name,
            p["rss_mib_after_warm_up"],
            p["rss_mib_end"],
            p["rss_growth_pct"],
            p["open_files_after_warm_up"],
            p["open_files_end"],
            p["open_files_growth_pct"],
            p["loop_lag_mean_ms"],
            p["loop_lag_p99_ms_worst_interval"],
        )
        for name, p in soak["processes"].items()
    ]
    header = (
        *("process", "RSS MiB after warm-up", "RSS MiB end", "RSS growth %"),
        *("open files after warm-up", "open files end", "open files growth %"),
        *("loop lag mean ms", "loop lag p99 ms, worst interval"),
    )
    lines += [_markdown("Every process after the warm-up", header, process_rows), ""]
    connection_rows: list[Row] = [(k, v["min"], v["max"], v["end"]) for k, v in soak["db_connections"].items()]
    lines += [
        _markdown("PostgreSQL connections (database/application)", ("", "min", "max", "end"), connection_rows),
        "",
    ]
    watcher_rows: list[Row] = [
        (channel, w["orders"], w["versions"], w["reconnects"], w["lost"])
        for channel, w in soak["watchers_by_channel"].items()
    ]
    lines += [_markdown("Watchers", ("channel", "orders followed", "versions", "reconnects", "lost"), watcher_rows), ""]
    request_rows: list[Row] = list(soak["requests_by_kind"].items())
    lines += [_markdown("Requests", ("kind", "count"), request_rows), "", "![soak](soak.png)", ""]
    return "\n".join(lines)
